/**
 * Cursor math: pure functions, unit-tested on their own.
 */
import type { VoucherRow } from '../types.ts';

/** The highest cursor value among rows, as epoch ms; null when no row has one. */
export function highestCursor(rows: readonly VoucherRow[], field: 'sourceModifiedAt' | 'sourceCreatedAt'): number | null {
  let highest: number | null = null;
  for (const row of rows) {
    const value = row[field];
    if (value === null) continue;
    const ms = Date.parse(value);
    if (Number.isFinite(ms) && (highest === null || ms > highest)) highest = ms;
  }
  return highest;
}

/** Merges a page's highest cursor into the scan's high mark (UTC ISO strings). */
export function raiseHighMark(current: string | null, pageHighest: number | null): string | null {
  if (pageHighest === null) return current;
  if (current === null || pageHighest > Date.parse(current)) return new Date(pageHighest).toISOString();
  return current;
}

/**
 * The watermark after a completed scan: the highest value actually seen, never lower than before, and
 * never past the moment the scan started plus a small tolerance — a cursor from the future (a source
 * clock running ahead, a bad record) must not make later scans skip everything before it.
 */
export function nextWatermark(previous: Date | null, highMark: string | null, scanStartedAt: Date, toleranceMs = 5 * 60_000): Date | null {
  let next = previous;
  if (highMark !== null) {
    const seen = Math.min(Date.parse(highMark), scanStartedAt.getTime() + toleranceMs);
    if (next === null || seen > next.getTime()) next = new Date(seen);
  }
  return next;
}

/** Where an incremental scan starts reading: the watermark minus the lookback; null = everything. */
export function scanThreshold(watermark: Date | null, lookbackMs: number): Date | null {
  return watermark === null ? null : new Date(watermark.getTime() - lookbackMs);
}
