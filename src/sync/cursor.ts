/**
 * Cursor math: pure functions, unit-tested on their own.
 */
import { DateTime } from 'luxon';
import type { VoucherRow } from '../types.ts';

/** The highest cursor value among rows, as epoch ms; null when no row has one. */
export function highestCursor(
  rows: readonly VoucherRow[],
  field: 'sourceModifiedAt' | 'sourceCreatedAt',
): number | null {
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
export function nextWatermark(
  previous: Date | null,
  highMark: string | null,
  scanStartedAt: Date,
  toleranceMs = 5 * 60_000,
): Date | null {
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

/**
 * For a source that orders by local wall-clock text (CareCloud's `last_change`): when the zone's clocks
 * went back between `threshold` and `now`, a record changed after the change carries a wall time up to
 * that much *below* records changed before it, so a scan that stops at `threshold` could stop above it.
 * Lower the threshold by the largest such drop. Offsets are sampled at both ends and every 6 hours
 * between (no zone changes its offset twice within 6 hours).
 */
export function wallClockSafeThreshold(threshold: Date, now: Date, zone: string): Date {
  const offsetAt = (ms: number) => DateTime.fromMillis(ms, { zone }).offset;
  const start = offsetAt(threshold.getTime());
  let lowest = Math.min(start, offsetAt(now.getTime()));
  const step = 6 * 3_600_000;
  for (let t = threshold.getTime() + step, n = 0; t < now.getTime() && n < 4 * 366; t += step, n++)
    lowest = Math.min(lowest, offsetAt(t));
  return new Date(threshold.getTime() - Math.max(0, start - lowest) * 60_000);
}
