/**
 * CareCloud `GET /customers/{customer_id}/vouchers`: one customer's vouchers, for a customer run
 * (src/sync/customer-sync.ts). Paged like a full scan of `GET /vouchers` — sorted by `last_change` ASC (a voucher
 * changed while we page moves to the end, where we still read it), offsets checked by anchors, read to an empty or
 * confirmed short page (src/sync/offset-scan.ts) — since the customer's list shifts under us just the same.
 */
import { FatalSourceError } from '../../errors.ts';
import { offsetScan } from '../../sync/offset-scan.ts';
import type { CustomerScanContext, ScanPage } from '../../types.ts';
import type { CareCloudClient } from './client.ts';
import type { CareCloudConfig } from './config.ts';
import { keyOf } from './map.ts';

export function createCustomerScan(
  config: CareCloudConfig,
  cursorOf: (record: unknown) => number | null,
): (context: CustomerScanContext<CareCloudClient>, customerId: string) => AsyncIterable<ScanPage> {
  return ({ client, call, pageSizing }, customerId) =>
    offsetScan({
      fetch: async (offset, count) => {
        const page = await client.listCustomerVouchers(
          customerId,
          { count, offset, sort_field: 'last_change', sort_direction: 'ASC' },
          call,
        );
        if (page === null) throw new FatalSourceError(`CareCloud has no customer ${customerId} (404)`, 404);
        return { records: page.vouchers, total: page.totalItems };
      },
      pageSize: config.pageSize,
      sizing: pageSizing,
      overlap: config.pageOverlap,
      direction: 'ASC',
      keyOf,
      cursorOf,
      server: 'CareCloud',
      requireEmptyPage: true,
    });
}
