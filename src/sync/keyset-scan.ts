/**
 * Paging by cursor value instead of position: each request asks for records whose cursor is at or after
 * the highest value read so far (`where CreatedDate >= …`, ascending). Rows deleted while we page cannot
 * pull unread rows past us, and new rows append at the end. Records sharing the boundary value are read
 * again (harmless); when a whole page shares one value, the page number moves on instead.
 */
import type { Json } from '../types.ts';

export interface KeysetProgress {
  /** Cursor value (UTC ISO, whole seconds) the next request starts from; null = from the beginning. */
  from: string | null;
  /** Page number within the records at or after `from` (1-based). */
  page: number;
  [key: string]: Json;
}

export interface KeysetScanOptions {
  fetch(from: string | null, page: number, rows: number): Promise<unknown[]>;
  rows: number;
  /** The record's cursor as epoch ms, or null when it cannot be read. */
  positionOf(record: unknown): number | null;
  start: KeysetProgress;
}

export async function* keysetScan(options: KeysetScanOptions): AsyncGenerator<{ records: unknown[]; progress: KeysetProgress }> {
  let { from, page } = options.start;
  for (;;) {
    const records = await options.fetch(from, page, options.rows);
    const positions = records.map(options.positionOf).filter((p): p is number => p !== null);
    // Whole seconds: the server may keep more precision than we can state, and `>=` must include them.
    const highest = positions.length > 0 ? floorToSecond(Math.max(...positions)) : null;
    if (highest !== null && (from === null || highest > from)) {
      from = highest;
      page = 1;
    } else {
      page += 1;
    }
    yield { records, progress: { from, page } };
    if (records.length < options.rows) return;
  }
}

function floorToSecond(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}
