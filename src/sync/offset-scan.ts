/**
 * Offset paging over live data that shifts while we page (CareCloud). Each request starts a few records
 * early and must find the previous page's last keys (its anchors): found, the page continues the scan; not
 * found, rows moved, and the scan steps forward or back until it finds them, or starts over (re-reading is
 * harmless, skipping is not).
 *
 * Every request counts (at the real APIs' limits a scan's duration is its number of requests), so a scan
 * starts QUIET_OVERLAP (one) record early while nothing shifts: one re-read record is enough to see any
 * shift, since the anchor it must hold is then missing or out of place. The first shift seen widens the
 * overlap to `overlap` for the rest of the scan, where shifts of fewer records than that cost no extra
 * request. The anchors kept are always the last `overlap` records read, whatever the overlap in use, so a
 * deleted anchor leaves others to find. A slice of a larger scan finds its start by its planned
 * anchors, failing that by the cursor planned there, and reads past its end to the next slice's start.
 * The why and the costs: docs/design.md ("How voucher-sync stays correct": CareCloud, and "Work any worker
 * can take").
 *
 * A total the server reports is a hint, never a stop: a full page means there may be more, whatever the
 * total says; a short page ends the list. A ProgressGuard stops a scan whose pages bring nothing new (a
 * server that ignores `offset`), and an answer too large to hold makes the scan ask for pages half the
 * size; offsets stay valid whatever the page size, and the smaller size is kept in the progress. A page size
 * found at run time (`sizing`, src/sync/page-size.ts) may change between any two requests the same way: a
 * refused size is asked again smaller at the same offset, and a larger one is tried once it is known or likely
 * to be accepted.
 */
import { PageSizeRefusedError, RetriableSourceError } from '../errors.ts';
import type { Json, PageSizing } from '../types.ts';
import { ProgressGuard } from './progress-guard.ts';
import { smallerPageSize } from './smaller-pages.ts';

export interface OffsetProgress {
  /** Position, in the list as last read, just after the last record read. */
  offset: number;
  /** Keys and cursors of the last records read, oldest first. */
  anchors: { key: string; at: number | null }[];
  /** The page size this scan fell back to after an answer too large to hold; absent = the configured one. */
  size?: number;
}

/** Where a slice of a larger (ASC) scan starts and ends, as planned. */
export interface OffsetSlice {
  /** Where the slice starts, offset and cursor, for when its anchors are gone; null: by anchors only. */
  start?: { offset: number; at: number } | null;
  /** Stop once this offset is read; default: read to the end of the list. */
  endOffset?: number;
  /** Where the next slice starts, as a cursor: the slice reads past `endOffset` until it reaches it. */
  endAt?: number | null;
}

export interface OffsetScanOptions {
  fetch(offset: number, count: number): Promise<{ records: unknown[]; total: number | null }>;
  /** Records a request asks for at most: exactly these, unless `sizing` is given. */
  pageSize: number;
  /**
   * A page size found at run time: each request asks for `sizing.next()` (at most `pageSize`) and tells it what the
   * server made of that; a refusal (PageSizeRefusedError) is asked again smaller. Absent: a refusal fails the scan.
   */
  sizing?: PageSizing;
  /**
   * Records re-read at each boundary once a shift has been seen, and anchors kept; at least 1 to detect
   * shifts. Until a shift is seen, a scan re-reads QUIET_OVERLAP.
   */
  overlap: number;
  direction: 'ASC' | 'DESC';
  keyOf(record: unknown): string | undefined;
  /** The record's cursor (epoch ms), or null when it cannot be read. */
  cursorOf(record: unknown): number | null;
  /**
   * True for a record beyond what the scan needs (older than an incremental scan's threshold): the scan ends with the
   * first page that holds one, and leaves such records out of it — they were read by earlier runs, and an idle run's
   * one page (up to 1,000 records) would otherwise all be mapped and compared again to change nothing.
   */
  isPastEnd?(record: unknown): boolean;
  /** Stop only on an empty page or a short page the total confirms, never on another short page (full scans). */
  requireEmptyPage?: boolean;
  start?: OffsetProgress | null;
  /** The bounds of a slice of a larger scan (ASC); default: the whole list. */
  slice?: OffsetSlice;
  /** How many times one boundary may be re-requested before giving up for now. Default 8. */
  maxRealign?: number;
  /** The source as named in errors. @default 'the server' */
  server?: string;
  /** Records the scan expects to read (a slice's planned size), for the guard's request bound. @default 0 */
  expected?: number;
}

export interface OffsetPage {
  records: unknown[];
  /** The total the server reported with this page; null when it sent none. */
  total: number | null;
  progress: OffsetProgress & { [key: string]: Json };
}

/** Records a request re-reads while no shift has been seen. */
export const QUIET_OVERLAP = 1;

/**
 * What one scan keeps while it pages: its options, the page size an answer too large made it fall back to (`cap`)
 * and the one it asks for (no more than `cap` and what the server accepts), the overlap in use and the most it
 * may grow to (also the anchors kept), whether a shift widened it, its guard.
 */
interface ScanState {
  options: OffsetScanOptions;
  cap: number;
  pageSize: number;
  overlap: number;
  maxOverlap: number;
  widened: boolean;
  restarts: number;
  guard: ProgressGuard;
}

/** Thrown inside a read when the page size dropped: the read starts again with the new size. */
class Resized extends Error {}

export async function* offsetScan(options: OffsetScanOptions): AsyncGenerator<OffsetPage> {
  const cap = Math.max(1, Math.min(options.pageSize, options.start?.size ?? Infinity));
  const guard = new ProgressGuard({
    server: options.server ?? 'the server',
    parameter: 'offset',
    step: 1,
    expected: options.expected,
  });
  const scan: ScanState = {
    options,
    cap,
    pageSize: cap,
    overlap: 0,
    maxOverlap: 0,
    widened: false,
    restarts: 0,
    guard,
  };
  // The size of the first request and what follows from it (overlap, the guard's step).
  resize(scan);
  let offset = options.start?.offset ?? 0;
  let anchors = options.start?.anchors ?? [];
  for (;;) {
    const { records, total, from, asked, restarted } = await readResized(scan, offset, anchors);
    guard.update({ expected: total });
    const fresh = restarted ? records : freshRecords(records, usable(scan, anchors), options);
    guard.page(records.map(options.keyOf), `offset ${from}`);
    offset = from + records.length;
    anchors =
      scan.maxOverlap === 0 ? [] : anchorsOf(records.slice(-scan.maxOverlap * 2), options).slice(-scan.maxOverlap);
    const progress: OffsetPage['progress'] = { offset, anchors };
    if (scan.cap < options.pageSize) progress.size = scan.cap;
    const beyond = new Set(options.isPastEnd ? records.filter(options.isPastEnd) : []);
    yield { records: beyond.size > 0 ? fresh.filter((record) => !beyond.has(record)) : fresh, total, progress };
    if (records.length === 0) return;
    const end = options.slice?.endOffset;
    if (end !== undefined && offset >= end && reaches(records, options.slice?.endAt, options.cursorOf)) return;
    // A short page ends the list when it holds nothing beyond the anchors, or when the total agrees;
    // otherwise (a server that sent fewer records than asked) only when the caller accepts short pages as
    // the end. A full page never ends it, whatever the total says.
    const short = records.length < asked;
    if (
      short &&
      (fresh.length === 0 || (total !== null && offset >= total) || (total === null && !options.requireEmptyPage))
    )
      return;
    if (beyond.size > 0) return;
  }
}

/** Anchors can only be looked for while requests re-read some records (a page size of 1 re-reads none). */
const usable = (scan: ScanState, anchors: OffsetProgress['anchors']) => (scan.maxOverlap === 0 ? [] : anchors);

/** A shift was seen: from now on each request re-reads `maxOverlap` records, so that small shifts cost nothing. */
function widen(scan: ScanState): void {
  scan.widened = true;
  scan.overlap = scan.maxOverlap;
}

/**
 * Sets the page size the next request asks for (the cap, or less when the server accepts less) and what follows
 * from it: the overlap (a page re-reads fewer records than it holds), the guard's step.
 */
function resize(scan: ScanState): void {
  scan.pageSize = Math.max(1, Math.min(scan.cap, scan.options.sizing?.next() ?? scan.cap));
  scan.maxOverlap = Math.min(scan.options.overlap, scan.pageSize - 1);
  scan.overlap = scan.widened ? scan.maxOverlap : Math.min(QUIET_OVERLAP, scan.maxOverlap);
  scan.guard.update({ step: scan.pageSize - scan.maxOverlap });
}

/** One aligned read, started again (with a smaller page) each time an answer was too large to hold or refused. */
async function readResized(scan: ScanState, offset: number, anchors: OffsetProgress['anchors']) {
  for (;;) {
    try {
      return await fetchAligned(scan, offset, usable(scan, anchors));
    } catch (error) {
      if (!(error instanceof Resized)) throw error;
    }
  }
}

/**
 * Sends one request, counted by the guard (a refused one too: the server counts it). An answer too large halves
 * the cap, a refused size lowers what `sizing` gives; either throws Resized, for the read to start again smaller.
 * An answer tells `sizing` the size was accepted, and the next request may ask for more.
 */
async function request(scan: ScanState, from: number, count: number) {
  scan.guard.request(`offset ${from}`);
  const { sizing } = scan.options;
  const answer = await scan.options.fetch(from, count).catch(async (error: unknown) => {
    const where = `${scan.options.server ?? 'the server'} at offset ${from}`;
    if (sizing && error instanceof PageSizeRefusedError) await sizing.refused(error);
    else scan.cap = Math.min(scan.cap, smallerPageSize(error, count, where));
    resize(scan);
    throw new Resized();
  });
  if (sizing) {
    await sizing.accepted(count);
    resize(scan);
  }
  return answer;
}

/** The anchors `records` give, in order: their keys and cursors (records without a key give none). */
export function anchorsOf(
  records: unknown[],
  options: Pick<OffsetScanOptions, 'keyOf' | 'cursorOf'>,
): OffsetProgress['anchors'] {
  return records.flatMap((record) => {
    const key = options.keyOf(record);
    return key === undefined ? [] : [{ key, at: options.cursorOf(record) }];
  });
}

/** True when `endAt` is unset or some record sorts at or after it. */
function reaches(
  records: unknown[],
  endAt: number | null | undefined,
  cursorOf: OffsetScanOptions['cursorOf'],
): boolean {
  if (endAt === null || endAt === undefined) return true;
  return records.some((record) => {
    const position = cursorOf(record);
    return position !== null && position >= endAt;
  });
}

/**
 * How many records to ask for at `from`: a slice asks for no more than it still needs before its end, but
 * always for more than the records it re-reads (past its end offset, it reads on to its end value).
 */
function askedAt(scan: ScanState, from: number): number {
  const endOffset = scan.options.slice?.endOffset;
  const needed = endOffset === undefined ? Infinity : endOffset - from;
  return needed > scan.overlap ? Math.min(scan.pageSize, needed) : scan.pageSize;
}

/**
 * A slice's first page, from its planned offset or earlier: the first page whose first readable record
 * sorts before the planned start value (or that starts the list). Each step back is twice the one before:
 * a shift of n rows costs about log2(n / page) requests, and up to n rows (plus the rows that share the
 * start value) are read again.
 */
async function fetchSliceStart(scan: ScanState, { offset, at: startAt }: { offset: number; at: number }) {
  const step = Math.max(1, scan.pageSize - scan.overlap);
  let from = Math.max(0, offset);
  for (let back = step; ; back *= 2) {
    const asked = askedAt(scan, from);
    const { records, total } = await request(scan, from, asked);
    const first = records.map(scan.options.cursorOf).find((p) => p !== null);
    if (from === 0 || (first !== undefined && first < startAt)) return { records, total, from, asked, restarted: true };
    from = Math.max(0, from - back);
  }
}

/** `scan.restarts` counts how often this scan started over from the top (a slice: from its start). */
async function fetchAligned(scan: ScanState, offset: number, anchors: OffsetProgress['anchors']) {
  const { options } = scan;
  const step = Math.max(1, scan.pageSize - scan.overlap);
  const sliceStart = options.slice?.start ?? null;
  if (anchors.length === 0 && sliceStart !== null && offset === sliceStart.offset)
    return fetchSliceStart(scan, sliceStart);
  let from = Math.max(0, offset - Math.min(anchors.length, scan.overlap));
  for (let attempt = 0; ; attempt++) {
    const asked = askedAt(scan, from);
    const { records, total } = await request(scan, from, asked);
    // An empty page where the anchors were means the tail was pulled up past us: it is looked for too.
    if (anchors.length === 0 || from === 0) return { records, total, from, asked, restarted: false };
    const found = findAnchor(records, anchors, options);
    if (found >= 0) {
      // The newest anchor is expected just before `offset`; anywhere else (or found only after a step), rows moved.
      if (attempt > 0 || found !== offset - from - 1 || options.keyOf(records[found]) !== anchors.at(-1)!.key)
        widen(scan);
      return { records, total, from, asked, restarted: false };
    }
    widen(scan);
    if (attempt >= (options.maxRealign ?? 8)) {
      if (scan.restarts >= 2) {
        throw new RetriableSourceError(
          `records kept shifting by more than a page while paging (offset ${from}); the scan will resume later`,
        );
      }
      scan.restarts++;
      // Starting over reads again what this scan read: new to the restarted scan, with a fresh bound.
      scan.guard.restart();
      if (sliceStart !== null) return fetchSliceStart(scan, sliceStart);
      const top = await request(scan, 0, scan.pageSize);
      return { ...top, from: 0, asked: scan.pageSize, restarted: true };
    }
    from = liesBeforeAnchors(records, anchors, options) ? from + step : Math.max(0, from - step);
  }
}

/**
 * Index in `records` of the latest anchor found, or -1. A record counts as its anchor only while it keeps
 * its cursor: one that changed since has moved (to the end of an ASC list), and finding it there says
 * nothing about where the scan stood.
 */
function findAnchor(
  records: unknown[],
  anchors: OffsetProgress['anchors'],
  options: Pick<OffsetScanOptions, 'keyOf' | 'cursorOf'>,
): number {
  const keys = records.map(options.keyOf);
  for (let i = anchors.length - 1; i >= 0; i--) {
    const anchor = anchors[i]!;
    const index = keys.lastIndexOf(anchor.key);
    if (index >= 0 && (anchor.at === null || options.cursorOf(records[index]) === anchor.at)) return index;
  }
  return -1;
}

function freshRecords(
  records: unknown[],
  anchors: OffsetProgress['anchors'],
  options: Pick<OffsetScanOptions, 'keyOf' | 'cursorOf'>,
): unknown[] {
  const index = anchors.length > 0 ? findAnchor(records, anchors, options) : -1;
  return index >= 0 ? records.slice(index + 1) : records;
}

/** True when every readable record sorts strictly before the newest anchor: rows were pushed down. */
function liesBeforeAnchors(
  records: unknown[],
  anchors: OffsetProgress['anchors'],
  options: OffsetScanOptions,
): boolean {
  const anchorAt = anchors[anchors.length - 1]?.at;
  if (anchorAt === null || anchorAt === undefined) return false;
  const positions = records.map(options.cursorOf).filter((p): p is number => p !== null);
  if (positions.length === 0) return false;
  return options.direction === 'DESC' ? Math.min(...positions) > anchorAt : Math.max(...positions) < anchorAt;
}
