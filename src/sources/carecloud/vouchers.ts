/**
 * CareCloud `GET /vouchers`. No "changed since" filter exists, so an incremental scan sorts by
 * `last_change` DESC and pages down until it is past the watermark minus the lookback; a full scan sorts
 * ASC (a record changed while we page moves to the end, where we still read it) and reads to the end.
 */
import pMap from 'p-map';
import type { CareCloudConfig } from '../../config.ts';
import type { Json, MapResult, ScanContext, StreamDefinition, VoucherRow } from '../../types.ts';
import { scanThreshold, wallClockSafeThreshold } from '../../sync/cursor.ts';
import { anchorsOf, offsetScan, type OffsetProgress } from '../../sync/offset-scan.ts';
import { parseLocalDateTime } from '../parse.ts';
import { RecordReader } from '../record-reader.ts';
import type { CareCloudClient } from './client.ts';

const STATES = [0, 1, 2] as const;

export function mapCareCloudVoucher(raw: unknown, zone: string): MapResult {
  const r = new RecordReader(raw);
  const state = r.oneOf('state', STATES);
  const row: VoucherRow = {
    sourceId: r.text('voucher_id', { required: true }) ?? '',
    code: r.text('code'),
    customerId: r.text('customer_id', { required: true }),
    // state: 0 deleted, 1 active, 2 non active. A record without a state is taken as active.
    status: state === 0 ? 'deleted' : state === 2 ? 'inactive' : 'active',
    amount: r.amount('value'),
    redeemedAmount: null,
    validFrom: r.localDate('valid_from', zone),
    validTo: r.localDate('valid_to', zone),
    appliedAt: r.localDate('applied_date', zone),
    sourceCreatedAt: r.localDate('created_at', zone),
    sourceModifiedAt: r.localDate('last_change', zone),
    isDeleted: state === 0,
    raw,
  };
  return r.result(row, raw);
}

const field = (record: unknown, name: string): unknown =>
  record !== null && typeof record === 'object' ? (record as Record<string, unknown>)[name] : undefined;

function keyOf(record: unknown): string | undefined {
  const id = field(record, 'voucher_id');
  return typeof id === 'string' && id !== '' ? id : typeof id === 'number' ? String(id) : undefined;
}

/**
 * A slice of a full scan, as planned: its offsets; the records just before its start (keys and sort
 * values, epoch ms of `last_change`), for it to find its place again however rows shifted since; and the
 * sort values at its start and at the next slice's start (null when unreadable, first and last slice).
 */
interface CareCloudSlice {
  start: number;
  end: number | null;
  anchors: { key: string; at: number | null }[];
  startAt: number | null;
  endAt: number | null;
  [key: string]: Json;
}

const isCount = (value: unknown): value is number => typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
const isValueOrNull = (value: unknown): value is number | null => value === null || (typeof value === 'number' && Number.isFinite(value));
const isAnchor = (value: unknown): boolean => {
  const anchor = value as { key?: unknown; at?: unknown } | null;
  return typeof anchor === 'object' && anchor !== null && typeof anchor.key === 'string' && isValueOrNull(anchor.at);
};

/** A slice as planned by planSlices, checked: it comes back from a queue. Plans saved by earlier versions hold offsets only. */
function sliceOf(slice: unknown): CareCloudSlice {
  const s = (typeof slice === 'object' && slice !== null ? slice : {}) as Partial<CareCloudSlice>;
  const parsed = { start: s.start, end: s.end, anchors: s.anchors ?? [], startAt: s.startAt ?? null, endAt: s.endAt ?? null };
  if (!isCount(parsed.start) || !(parsed.end === null || isCount(parsed.end)) || !Array.isArray(parsed.anchors) || !parsed.anchors.every(isAnchor) || !isValueOrNull(parsed.startAt) || !isValueOrNull(parsed.endAt)) {
    throw new Error(`not a CareCloud slice (expected {start, end, anchors, startAt, endAt}): ${JSON.stringify(slice)?.slice(0, 200)}`);
  }
  return parsed as CareCloudSlice;
}

/** Boundary reads a plan makes at once. */
const PLAN_CONCURRENCY = 8;

/** Slices a scan aims for at least: enough that the last ones to finish leave few of the workers' slots idle. */
const TARGET_SLICES = 32;

/**
 * Records per slice: at most `slicePages` pages, fewer when that would make fewer than TARGET_SLICES slices
 * (but at least two pages). A slice re-reads `pageOverlap` records past both of its ends and each request
 * after the first re-reads `pageOverlap`, so a slice of n requests covers n × (pageSize − overlap) − overlap
 * records exactly: none of its requests is a short one spent on a few records.
 */
export function sliceSize(total: number, config: Pick<CareCloudConfig, 'pageSize' | 'pageOverlap' | 'slicePages'>): number {
  const step = config.pageSize - config.pageOverlap;
  const requests = Math.max(Math.min(2, config.slicePages), Math.min(config.slicePages, Math.floor(total / step / TARGET_SLICES)));
  return Math.max(step, requests * step - config.pageOverlap);
}

export function createCareCloudVouchers(config: CareCloudConfig): StreamDefinition<CareCloudClient> {
  const positionOf = (record: unknown): number | null => {
    const value = field(record, 'last_change');
    if (typeof value !== 'string') return null;
    try {
      return Date.parse(parseLocalDateTime(value, config.timezone));
    } catch {
      return null;
    }
  };
  /** Where a slice starting at `start` reads from: `pageOverlap` records early (see scanSlice). */
  const readFrom = (start: number) => Math.max(0, start - config.pageOverlap);
  return {
    name: 'vouchers',
    cursorField: 'sourceModifiedAt',
    mappingKey: `timezone=${config.timezone}`,
    map: (raw) => mapCareCloudVoucher(raw, config.timezone),
    scan({ client, mode, watermark, lookbackMs, now, progress, call }: ScanContext<CareCloudClient>) {
      const direction = mode === 'incremental' ? 'DESC' : 'ASC';
      // CareCloud sorts last_change as local wall-clock text (positions below are read with the same
      // earliest-instant rule, so they follow that order); see wallClockSafeThreshold.
      const start = mode === 'incremental' ? scanThreshold(watermark, lookbackMs) : null;
      const threshold = start ? wallClockSafeThreshold(start, now, config.timezone).getTime() : null;
      return offsetScan({
        fetch: async (offset, count) => {
          const page = await client.listVouchers({ count, offset, sort_field: 'last_change', sort_direction: direction }, call);
          return { records: page.vouchers, total: page.totalItems };
        },
        pageSize: config.pageSize,
        overlap: config.pageOverlap,
        direction,
        keyOf,
        positionOf,
        isPastEnd:
          threshold === null
            ? undefined
            : (records) => {
                const positions = records.map(positionOf).filter((p): p is number => p !== null);
                return positions.length > 0 && Math.min(...positions) < threshold;
              },
        requireEmptyPage: mode === 'full',
        start: progress as OffsetProgress | null,
        server: 'CareCloud',
      });
    },
    async planSlices({ client, call }) {
      // One cheap request for the total, then ranges of whole requests, the last one open-ended so that
      // records changed during the scan (they move to the end in ASC order) are still read. Rows shift
      // while the scan runs, so each boundary is read too (one request of overlap + 1 records): a slice
      // started late finds its place by those records, not by an offset that has moved since.
      const asc = { sort_field: 'last_change', sort_direction: 'ASC' } as const;
      const probe = await client.listVouchers({ count: 1, offset: 0, ...asc }, call);
      const total = probe.totalItems;
      if (total === null || total <= config.pageSize * config.slicePages) return null;
      const size = sliceSize(total, config);
      const starts = Array.from({ length: Math.ceil(total / size) }, (_, i) => i * size);
      // The boundaries are independent: a few are read at once (the rate limiter still spaces them), so
      // the plan costs one round trip per PLAN_CONCURRENCY slices, not one per slice.
      const boundaries = await pMap(starts.slice(1), async (start) => {
        const from = readFrom(start);
        const { vouchers } = await client.listVouchers({ count: start - from + 1, offset: from, ...asc }, call);
        return { anchors: anchorsOf(vouchers.slice(0, start - from), { keyOf, positionOf }), startAt: positionOf(vouchers[start - from]) };
      }, { concurrency: PLAN_CONCURRENCY });
      const slices: CareCloudSlice[] = starts.map((start, i) => ({
        start,
        end: start + size < total ? start + size : null,
        ...(i === 0 ? { anchors: [], startAt: null } : boundaries[i - 1]!),
        endAt: boundaries[i]?.startAt ?? null,
      }));
      return slices;
    },
    scanSlice({ client, progress, call }, slice) {
      const { start, end, anchors, startAt, endAt } = sliceOf(slice);
      const from = readFrom(start);
      // Each slice reads `pageOverlap` records past both of its ends, and finds its start and its end by
      // what the plan read there, so a record that rows shifting moved across a boundary is still seen.
      return offsetScan({
        fetch: async (offset, count) => {
          const page = await client.listVouchers({ count, offset, sort_field: 'last_change', sort_direction: 'ASC' }, call);
          return { records: page.vouchers, total: page.totalItems };
        },
        pageSize: config.pageSize,
        overlap: config.pageOverlap,
        direction: 'ASC',
        keyOf,
        positionOf,
        requireEmptyPage: end === null,
        endOffset: end === null ? undefined : end + config.pageOverlap,
        sliceStart: startAt === null ? null : { offset: from, at: startAt },
        endAt,
        server: 'CareCloud',
        expected: end === null ? 0 : end - start,
        start: (progress as OffsetProgress | null) ?? (anchors.length > 0 ? { offset: start, anchors } : { offset: from, anchors: [] }),
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
  };
}
