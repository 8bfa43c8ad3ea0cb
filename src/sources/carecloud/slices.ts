/**
 * Slices of a CareCloud full scan: how many records each, how they are planned (the records read at each
 * boundary, for a slice to find its place however rows shifted), and the bounds a slice is read with. The
 * why: docs/design.md, "Work any worker can take".
 */
import pMap from 'p-map';
import { ResponseTooLargeError } from '../../errors.ts';
import type { CallContext, Json, PageSizing } from '../../types.ts';
import { firstOffsetAtOrAfter } from '../../sync/backfill-locate.ts';
import { QUIET_OVERLAP, anchorsOf, type OffsetProgress, type OffsetSlice } from '../../sync/offset-scan.ts';
import { settlePageSize } from '../../sync/page-size.ts';
import type { CareCloudClient } from './client.ts';
import type { CareCloudConfig } from './config.ts';

type SliceConfig = Pick<CareCloudConfig, 'pageSize' | 'pageOverlap' | 'slicePages'>;

/** What a plan reads the list with: the client, the call, and the page size found so far when it is found. */
export interface PlanReader {
  client: CareCloudClient;
  call: CallContext;
  sizing?: PageSizing;
}

/**
 * The slice settings at the page size in use: the one configured, or the one found so far (with the overlap no
 * larger than that size less one, as a scan has it). Slices are planned in offsets, so a size that changes later (the
 * source lowered its maximum) changes the requests a slice makes, never the records it covers.
 */
export function sliceConfig(config: SliceConfig, sizing?: PageSizing): SliceConfig {
  if (!sizing) return config;
  const pageSize = Math.max(1, Math.min(config.pageSize, sizing.next()));
  return { ...config, pageSize, pageOverlap: Math.min(config.pageOverlap, pageSize - 1) };
}

/**
 * A slice of a full scan, as planned: its offsets; the records just before its start (their keys and
 * cursors, epoch ms of `last_change`), its anchors; and the cursors at its start and at the next slice's
 * start (null when unreadable, first and last slice).
 */
export interface CareCloudSlice {
  start: number;
  end: number | null;
  anchors: { key: string; at: number | null }[];
  startAt: number | null;
  endAt: number | null;
  [key: string]: Json;
}

const isCount = (value: unknown): value is number =>
  typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
const isValueOrNull = (value: unknown): value is number | null =>
  value === null || (typeof value === 'number' && Number.isFinite(value));
const isAnchor = (value: unknown): boolean => {
  const anchor = value as { key?: unknown; at?: unknown } | null;
  return typeof anchor === 'object' && anchor !== null && typeof anchor.key === 'string' && isValueOrNull(anchor.at);
};

/** A slice as planned by planCareCloudSlices, checked: it comes back from a queue. */
export function sliceOf(slice: unknown): CareCloudSlice {
  const s = (typeof slice === 'object' && slice !== null ? slice : {}) as Partial<CareCloudSlice>;
  if (
    !isCount(s.start) ||
    !(s.end === null || isCount(s.end)) ||
    !Array.isArray(s.anchors) ||
    !s.anchors.every(isAnchor) ||
    !isValueOrNull(s.startAt) ||
    !isValueOrNull(s.endAt)
  ) {
    throw new Error(
      `not a CareCloud slice (expected {start, end, anchors, startAt, endAt}): ${JSON.stringify(slice)?.slice(0, 200)}`,
    );
  }
  return { start: s.start, end: s.end, anchors: s.anchors, startAt: s.startAt, endAt: s.endAt };
}

/** Boundary reads a plan makes at once. */
const PLAN_CONCURRENCY = 8;

/** What a quiet slice re-reads at each of its ends and at each request: see QUIET_OVERLAP in offset-scan.ts. */
const overlapOf = (config: SliceConfig) => Math.min(QUIET_OVERLAP, config.pageOverlap, config.pageSize - 1);

/**
 * Records per slice: `slicePages` requests' worth. Each slice but the first costs one request more (the
 * plan's read of its boundary), so slices are as large as the operator allows, not cut smaller to keep
 * more workers busy: at the API's rate limit, requests decide a scan's duration, and at the default 250
 * pages a slice the boundaries cost 0.4 % more requests. While nothing shifts, a slice re-reads one record
 * past both of its ends and each request after the first re-reads one (QUIET_OVERLAP), so a slice of n
 * requests covers n × (pageSize − 1) − 1 records exactly: none of its requests is a short one spent on a
 * few records.
 */
export function sliceSize(config: SliceConfig): number {
  const overlap = overlapOf(config);
  const step = config.pageSize - overlap;
  return Math.max(step, config.slicePages * step - overlap);
}

/** Where a slice starting at `start` reads from when it has no anchors: one record early. */
const readFrom = (start: number, config: SliceConfig) => Math.max(0, start - overlapOf(config));

/** Where the plan reads a boundary from: `pageOverlap` records early, the anchors a slice may look for. */
const anchorsFrom = (start: number, config: SliceConfig) => Math.max(0, start - config.pageOverlap);

const ASC = { sort_field: 'last_change', sort_direction: 'ASC' } as const;

/**
 * One cheap request for the total, then ranges of whole requests, the last one open-ended (records changed
 * during the scan move to the end in ASC order). Each boundary is read too (one request of overlap + 1
 * records), a few at once. Null when the scan is too small to split. A page size still to find is settled by the
 * request for the total first (totalOf), and the slices are cut to it.
 *
 * A backfill (`range`, epoch ms of `last_change`) splits only the offsets its range holds, found by binary search
 * (src/sync/backfill-locate.ts): its first slice finds its start by the range's `from`, its last ends at the range's
 * `to`, and a small range is one slice (none when it is empty). A server that sends no total gets one slice over
 * the whole list, cut at `to`.
 */
export async function planCareCloudSlices(
  reader: PlanReader,
  config: SliceConfig,
  cursorOf: (record: unknown) => number | null,
  keyOf: (record: unknown) => string | undefined,
  range?: { from: number; to: number },
): Promise<CareCloudSlice[] | null> {
  const { client, call, sizing } = reader;
  if (range) {
    const located = await locateRange(reader, cursorOf, range);
    if (located === null) return [{ start: 0, end: null, anchors: [], startAt: range.from, endAt: range.to }];
    const { first, end } = located;
    if (end <= first) return [];
    return planSpan(client, call, sliceConfig(config, sizing), { cursorOf, keyOf }, { first, end, range });
  }
  const total = await totalOf(reader);
  const sized = sliceConfig(config, sizing);
  if (total === null || total <= sized.pageSize * sized.slicePages) return null;
  return planSpan(client, call, sized, { cursorOf, keyOf }, { first: 0, end: total, range: null });
}

/**
 * The list's `total_items`, from one request at offset 0 (ASC) for one record. With a page size still to find, that
 * request asks instead for the sizes to try until the largest accepted is known (settlePageSize): slices are then cut
 * to that size, and no slice, read at once by many workers, spends refusals of its own.
 */
async function totalOf({ client, call, sizing }: PlanReader): Promise<number | null> {
  const read = (count: number) => client.listVouchers({ count, offset: 0, ...ASC }, call);
  if (!sizing || sizing.settled) return (await read(1)).totalItems;
  try {
    return (await settlePageSize(sizing, read)).totalItems;
  } catch (error) {
    // An answer too large to hold says nothing of what CareCloud accepts: the scans find out as they page, halving.
    if (!(error instanceof ResponseTooLargeError)) throw error;
    return (await read(1)).totalItems;
  }
}

/**
 * The offsets [first, end) a range of `last_change` (epoch ms) holds in the list sorted ASC: one request for the
 * total, then about 2 × log2(total) of one record each. Null when the server sends no total.
 */
export async function locateRange(
  reader: PlanReader,
  cursorOf: (record: unknown) => number | null,
  range: { from: number; to: number },
): Promise<{ first: number; end: number } | null> {
  const { client, call } = reader;
  const total = await totalOf(reader);
  if (total === null) return null;
  const at = async (offset: number) => {
    const [record] = (await client.listVouchers({ count: 1, offset, ...ASC }, call)).vouchers;
    return record === undefined ? undefined : cursorOf(record);
  };
  const first = await firstOffsetAtOrAfter(at, range.from, 0, total);
  return { first, end: await firstOffsetAtOrAfter(at, range.to, first, total) };
}

/** Slices of the offsets [first, end): open-ended at the end for a full scan, cut at `range.to` for a backfill. */
async function planSpan(
  client: CareCloudClient,
  call: CallContext,
  config: SliceConfig,
  { cursorOf, keyOf }: { cursorOf: (record: unknown) => number | null; keyOf: (record: unknown) => string | undefined },
  { first, end: total, range }: { first: number; end: number; range: { from: number; to: number } | null },
): Promise<CareCloudSlice[]> {
  const size = sliceSize(config);
  const starts = Array.from({ length: Math.ceil((total - first) / size) }, (_, i) => first + i * size);
  const boundaries = await pMap(
    starts.slice(1),
    async (start) => {
      const from = anchorsFrom(start, config);
      const { vouchers } = await client.listVouchers({ count: start - from + 1, offset: from, ...ASC }, call);
      return {
        anchors: anchorsOf(vouchers.slice(0, start - from), { keyOf, cursorOf }),
        startAt: cursorOf(vouchers[start - from]),
      };
    },
    { concurrency: PLAN_CONCURRENCY },
  );
  return starts.map((start, i) => ({
    start,
    end: start + size < total ? start + size : range ? total : null,
    ...(i === 0 ? { anchors: [], startAt: range?.from ?? null } : boundaries[i - 1]!),
    endAt: i < starts.length - 1 ? boundaries[i]!.startAt : (range?.to ?? null),
  }));
}

/**
 * How a planned slice is read: one record past both of its ends (more once rows shift: offset-scan.ts), its
 * start found by what the plan read there, its end by the next slice's start. The end offset only sizes the
 * last request: the slice stops once it has also read a record at or after the next slice's planned start
 * value, however rows moved.
 */
export function sliceBounds(
  slice: CareCloudSlice,
  config: SliceConfig,
): { first: OffsetProgress; bounds: OffsetSlice; expected: number } {
  const { start, end, anchors, startAt, endAt } = slice;
  const from = readFrom(start, config);
  return {
    first: anchors.length > 0 ? { offset: start, anchors } : { offset: from, anchors: [] },
    bounds: {
      start: startAt === null ? null : { offset: from, at: startAt },
      endOffset: end === null ? undefined : end + overlapOf(config),
      endAt,
    },
    expected: end === null ? 0 : end - start,
  };
}
