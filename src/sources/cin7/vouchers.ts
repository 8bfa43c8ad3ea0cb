/**
 * Cin7 Omni `GET v1/Voucher`. Vouchers have no id and no modification time: `Code` is the key and
 * `CreatedDate` the only cursor. Incremental scans read new vouchers by CreatedDate (ascending, by value
 * rather than by page, so deletions cannot shift unread rows past us); redemptions change no timestamp,
 * so only the full scan (reconciliation) sees them, and it also finds vanished vouchers.
 */
import type { Cin7Config } from '../../config.ts';
import type { MapResult, ScanContext, StreamDefinition, VoucherRow } from '../../types.ts';
import { scanThreshold } from '../../sync/cursor.ts';
import { keysetScan, keysetStart } from '../../sync/keyset-scan.ts';
import { pageScan, type PageProgress } from '../../sync/page-scan.ts';
import { parseIsoDateTime } from '../parse.ts';
import { RecordReader } from '../record-reader.ts';
import type { Cin7Client } from './client.ts';
import { createdWithin } from './where.ts';

const STATUSES = ['Active', 'Inactive'] as const;

/** The API documents PascalCase names but sends camelCase: read either. */
function camelKeys(raw: unknown): unknown {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return raw;
  return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k.charAt(0).toLowerCase() + k.slice(1), v]));
}

export function mapCin7Voucher(raw: unknown, zone: string): MapResult {
  const r = new RecordReader(camelKeys(raw));
  const status = r.oneOf('status', STATUSES);
  const row: VoucherRow = {
    sourceId: r.text('code', { required: true }) ?? '',
    code: r.text('code'),
    customerId: r.wholeNumber('customerID'),
    status: status === 'Inactive' ? 'inactive' : 'active',
    amount: r.amount('amount'),
    redeemedAmount: r.amount('redeemedAmount'),
    validFrom: null,
    validTo: r.isoDate('expiryDate', zone),
    appliedAt: null,
    sourceCreatedAt: r.isoDate('createdDate', zone),
    sourceModifiedAt: null,
    isDeleted: false,
    raw,
  };
  // Counts are checked though not stored: a record whose numbers are not numbers is not to be trusted.
  r.wholeNumber('redeemedCount');
  r.wholeNumber('redeemedCountLimit');
  return r.result(row, raw);
}

function keyOf(record: unknown): string | undefined {
  const code = (camelKeys(record) as Record<string, unknown> | null)?.code;
  return typeof code === 'string' && code !== '' ? code : undefined;
}

export function createCin7Vouchers(config: Cin7Config): StreamDefinition<Cin7Client> {
  const positionOf = (record: unknown): number | null => {
    const fields = camelKeys(record) as Record<string, unknown> | null;
    const value = fields?.createdDate;
    if (typeof value !== 'string') return null;
    try {
      return Date.parse(parseIsoDateTime(value, config.timezone));
    } catch {
      return null;
    }
  };
  const order = 'CreatedDate ASC';
  return {
    name: 'vouchers',
    cursorField: 'sourceCreatedAt',
    map: (raw) => mapCin7Voucher(raw, config.timezone),
    scan({ client, mode, watermark, lookbackMs, progress, call }: ScanContext<Cin7Client>) {
      if (mode === 'full') {
        return pageScan({
          fetch: (page, rows) => client.listVouchers({ order, page, rows }, call),
          rows: config.pageSize,
          start: (progress as PageProgress | null) ?? { page: 1 },
        });
      }
      const from = scanThreshold(watermark, lookbackMs);
      return keysetScan({
        fetch: (request) => client.listVouchers({ where: createdWithin(request.from, request.before), order, page: request.page, rows: request.rows }, call),
        rows: config.pageSize,
        positionOf,
        keyOf,
        start: keysetStart(progress, from ? from.toISOString().replace(/\.\d{3}Z$/, 'Z') : null),
        onUnsettled: (second, passes) =>
          client.logger.warn({ second, passes }, 'vouchers of one CreatedDate second kept changing while read; the next reconciliation reads the rest'),
      });
    },
    async lookup(client, keys, call) {
      const found: unknown[] = [];
      for (const key of keys) {
        const matches = await client.findByCode(key, call);
        found.push(...matches.filter((record) => keyOf(record) === key));
      }
      return found;
    },
  };
}
