/**
 * CareCloud `GET /vouchers`. No "changed since" filter exists, so an incremental scan sorts by
 * `last_change` DESC and pages down until it is past the watermark minus the lookback; a full scan sorts
 * ASC (a record changed while we page moves to the end, where we still read it) and reads to the end, split
 * into slices (slices.ts) when large; a backfill of a range reads the part of that ASC list the range holds, in
 * slices too. Paging by offset over rows that shift: src/sync/offset-scan.ts, and
 * the why in docs/design.md.
 */
import type { ScanContext, StreamDefinition } from '../../types.ts';
import { scanThreshold, wallClockSafeThreshold } from '../../sync/cursor.ts';
import { offsetScan, type OffsetProgress, type OffsetScanOptions } from '../../sync/offset-scan.ts';
import type { CareCloudClient } from './client.ts';
import type { CareCloudConfig } from './config.ts';
import { createCustomerScan } from './customer-vouchers.ts';
import { keyOf, lastChangeCursor, mapCareCloudVoucher } from './map.ts';
import { locateRange, planCareCloudSlices, sliceBounds, sliceConfig, sliceOf } from './slices.ts';

export function createCareCloudVouchers(config: CareCloudConfig): StreamDefinition<CareCloudClient> {
  const cursorOf = lastChangeCursor(config.timezone);
  /** An offset scan of the list sorted by last_change in `direction`, of the page size found so far when found. */
  const scanOf = (
    { client, call, pageSizing }: ScanContext<CareCloudClient>,
    direction: 'ASC' | 'DESC',
    options: Partial<OffsetScanOptions>,
  ) =>
    offsetScan({
      fetch: async (offset, count) => {
        const page = await client.listVouchers(
          { count, offset, sort_field: 'last_change', sort_direction: direction },
          call,
        );
        return { records: page.vouchers, total: page.totalItems };
      },
      pageSize: config.pageSize,
      sizing: pageSizing,
      overlap: config.pageOverlap,
      direction,
      keyOf,
      cursorOf,
      server: 'CareCloud',
      ...options,
    });
  return {
    name: 'vouchers',
    // CARECLOUD_PAGE_SIZE=auto: up to the ceiling, the largest `count` CareCloud accepts is found (src/sync/page-size.ts).
    pageSizing: config.findPageSize ? { ceiling: config.pageSize, parameter: 'count' } : undefined,
    cursorField: 'sourceModifiedAt',
    mappingKey: `timezone=${config.timezone}`,
    map: (raw) => mapCareCloudVoucher(raw, config.timezone),
    scan(context) {
      const { mode, watermark, lookbackMs, now, progress } = context;
      // CareCloud sorts last_change as local wall-clock text (cursors are read with the same
      // earliest-instant rule, so they follow that order); see wallClockSafeThreshold.
      const start = mode === 'incremental' ? scanThreshold(watermark, lookbackMs) : null;
      const threshold = start ? wallClockSafeThreshold(start, now, config.timezone).getTime() : null;
      return scanOf(context, mode === 'incremental' ? 'DESC' : 'ASC', {
        // A record whose last_change cannot be read is kept: mapping rejects it, with the reason.
        isPastEnd:
          threshold === null
            ? undefined
            : (record) => {
                const cursor = cursorOf(record);
                return cursor !== null && cursor < threshold;
              },
        requireEmptyPage: mode === 'full',
        start: progress as OffsetProgress | null,
      });
    },
    // A backfill's range is found in the list sorted ASC by last_change, which has no filter on it (slices.ts).
    planSlices: ({ client, call, range, pageSizing }) =>
      planCareCloudSlices(
        { client, call, sizing: pageSizing },
        config,
        cursorOf,
        keyOf,
        range && { from: range.from.getTime(), to: range.to.getTime() },
      ),
    async countRecords(client, range, call) {
      if (range === null) return (await client.listVouchers({ count: 1, offset: 0 }, call)).totalItems;
      const located = await locateRange({ client, call }, cursorOf, {
        from: range.from.getTime(),
        to: range.to.getTime(),
      });
      return located && located.end - located.first;
    },
    scanSlice(context, slice) {
      const planned = sliceOf(slice);
      const { first, bounds, expected } = sliceBounds(planned, sliceConfig(config, context.pageSizing));
      return scanOf(context, 'ASC', {
        requireEmptyPage: planned.end === null,
        slice: bounds,
        expected,
        start: (context.progress as OffsetProgress | null) ?? first,
      });
    },
    async lookup(client, keys, call) {
      const found: unknown[] = [];
      for (const key of keys) {
        const record = await client.getVoucher(key, call);
        if (record !== null) found.push(record);
      }
      return found;
    },
    scanCustomer: createCustomerScan(config, cursorOf),
  };
}
