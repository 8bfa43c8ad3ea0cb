/**
 * Offset paging over live data that shifts while we page.
 *
 * Between two page requests, records can move: under `last_change DESC` a record that changes jumps to
 * the top and pushes the others down (we see some twice — harmless, writes are idempotent), and a record
 * that is hard-deleted pulls the others up (the first records of the next page slide into the page we
 * already read — those would be missed). So each request starts `overlap` records early and must find one
 * of the previous page's last keys (the anchors) in what it gets back:
 *
 * - anchor found at index i → everything after i is new; we are continuous.
 * - no anchor, and the page lies wholly before the anchors in sort order → rows were pushed down further
 *   than a page: step forward.
 * - otherwise rows were pulled up more than the overlap (or the anchors vanished): step back and retry.
 *
 * A scan started at offset 0 needs no anchor. Progress (offset + anchors) is saved after each committed
 * page, so a later run resumes where this one stopped. When the anchors cannot be found again (a scan
 * resumed long after it stopped, with thousands of rows moved since), the scan starts over from the top:
 * re-reading is harmless, skipping is not.
 */
import { RetriableSourceError } from '../errors.ts';
import type { Json } from '../types.ts';

export interface OffsetProgress {
  /** Position, in the list as last read, just after the last record read. */
  offset: number;
  /** Keys and sort positions of the last records read, oldest first. */
  anchors: { key: string; at: number | null }[];
}

export interface OffsetScanOptions {
  fetch(offset: number, count: number): Promise<{ records: unknown[]; total: number | null }>;
  pageSize: number;
  /** Records re-read at each boundary; at least 1 to detect shifts. */
  overlap: number;
  direction: 'ASC' | 'DESC';
  keyOf(record: unknown): string | undefined;
  /** The record's sort value (epoch ms), or null when it cannot be read. */
  positionOf(record: unknown): number | null;
  /** True when the rest of the list is not needed (e.g. older than the incremental threshold). */
  isPastEnd?(records: unknown[]): boolean;
  /** Stop only on an empty page or a reached total, never on a short page (full scans). */
  requireEmptyPage?: boolean;
  start?: OffsetProgress | null;
  /** Stop once this position is read (a slice of a larger scan); default: read to the end. */
  endOffset?: number;
  /** How many times one boundary may be re-requested before giving up for now. Default 8. */
  maxRealign?: number;
}

export interface OffsetPage {
  records: unknown[];
  progress: OffsetProgress & { [key: string]: Json };
}

export async function* offsetScan(options: OffsetScanOptions): AsyncGenerator<OffsetPage> {
  const { overlap, keyOf } = options;
  let offset = options.start?.offset ?? 0;
  let anchors = options.start?.anchors ?? [];
  const scan = { restarts: 0 };
  for (;;) {
    const { records, total, from, asked, restarted } = await fetchAligned(options, offset, anchors, scan);
    const fresh = restarted ? records : freshRecords(records, anchors, keyOf);
    offset = from + records.length;
    anchors = records
      .slice(-Math.max(overlap * 2, 1))
      .flatMap((record) => {
        const key = keyOf(record);
        return key === undefined ? [] : [{ key, at: options.positionOf(record) }];
      })
      .slice(-overlap);
    yield { records: fresh, progress: { offset, anchors } };
    if (records.length === 0) return;
    if (options.endOffset !== undefined && offset >= options.endOffset) return;
    if (total !== null && offset >= total) return;
    // A short page ends the list when it holds nothing beyond the anchors; otherwise (a server that
    // sent fewer records than asked) only when the caller accepts short pages as the end.
    const short = records.length < asked;
    if (short && (fresh.length === 0 || (total === null && !options.requireEmptyPage))) return;
    if (options.isPastEnd?.(records)) return;
  }
}

/** `scan.restarts` counts how often this scan started over from the top. */
async function fetchAligned(options: OffsetScanOptions, offset: number, anchors: OffsetProgress['anchors'], scan: { restarts: number }) {
  const step = Math.max(1, options.pageSize - options.overlap);
  let from = Math.max(0, offset - Math.min(anchors.length, options.overlap));
  for (let attempt = 0; ; attempt++) {
    // A slice asks for no more than it still needs: what lies past its end is the next slice's to read.
    const asked = options.endOffset === undefined ? options.pageSize : Math.max(1, Math.min(options.pageSize, options.endOffset - from));
    const { records, total } = await options.fetch(from, asked);
    if (anchors.length === 0 || from === 0 || records.length === 0 || findAnchor(records, anchors, options.keyOf) >= 0) {
      // An empty page after a non-empty one can mean the tail was pulled up past us: look back once more.
      if (records.length === 0 && anchors.length > 0 && from > 0 && attempt === 0) {
        from = Math.max(0, from - step);
        continue;
      }
      return { records, total, from, asked, restarted: false };
    }
    if (attempt >= (options.maxRealign ?? 8)) {
      if (scan.restarts >= 2) {
        throw new RetriableSourceError(`records kept shifting by more than a page while paging (offset ${from}); the scan will resume later`);
      }
      scan.restarts++;
      const top = await options.fetch(0, options.pageSize);
      return { ...top, from: 0, asked: options.pageSize, restarted: true };
    }
    from = liesBeforeAnchors(records, anchors, options) ? from + step : Math.max(0, from - step);
  }
}

/** Index in `records` of the latest anchor found, or -1. */
function findAnchor(records: unknown[], anchors: OffsetProgress['anchors'], keyOf: (r: unknown) => string | undefined): number {
  const keys = records.map(keyOf);
  for (let i = anchors.length - 1; i >= 0; i--) {
    const index = keys.lastIndexOf(anchors[i]!.key);
    if (index >= 0) return index;
  }
  return -1;
}

function freshRecords(records: unknown[], anchors: OffsetProgress['anchors'], keyOf: (r: unknown) => string | undefined): unknown[] {
  const index = anchors.length > 0 ? findAnchor(records, anchors, keyOf) : -1;
  return index >= 0 ? records.slice(index + 1) : records;
}

/** True when every readable record sorts strictly before the newest anchor: rows were pushed down. */
function liesBeforeAnchors(records: unknown[], anchors: OffsetProgress['anchors'], options: OffsetScanOptions): boolean {
  const anchorAt = anchors[anchors.length - 1]?.at;
  if (anchorAt === null || anchorAt === undefined) return false;
  const positions = records.map(options.positionOf).filter((p): p is number => p !== null);
  if (positions.length === 0) return false;
  return options.direction === 'DESC' ? Math.min(...positions) > anchorAt : Math.max(...positions) < anchorAt;
}
