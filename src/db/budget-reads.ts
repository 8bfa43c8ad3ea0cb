/**
 * What the budget plan reads from Postgres (src/sync/budget-plan.ts): the long scans of a source still pending — a
 * saved reconciliation, backfill or first backfill, and the ones queued that have not started — and how many records
 * each has still to read, by the best estimate at hand.
 */
import type { PendingScan } from '../sync/budget-plan.ts';
import type { Db } from './client.ts';
import { logicalRunTotals } from './ledger.ts';
import type { ScanState } from './stream-state.ts';

/** The vouchers a source holds (not deleted): what a reconciliation not yet started expects to read. */
async function heldVouchers(db: Db, source: string): Promise<number> {
  const [row] = await db.$queryRaw<[{ n: bigint }]>`
    SELECT count(*) AS n FROM vouchers WHERE source = ${source} AND status <> 'deleted'`;
  return Number(row?.n ?? 0);
}

/**
 * The pending scans of `source`: each saved one of a bulk mode (an incremental one only while it is the first
 * backfill), and one per mode of `queuedModes` (the source's jobs waiting in Redis) that has no saved scan yet.
 */
export async function pendingScans(db: Db, source: string, queuedModes: string[]): Promise<PendingScan[]> {
  const states = await db.syncState.findMany({ where: { source } });
  const scans: PendingScan[] = [];
  let held: number | undefined;
  const vouchers = async () => (held ??= await heldVouchers(db, source));
  const saved = new Set<string>();
  for (const state of states) {
    const progress = (state.progress ?? {}) as Record<string, ScanState | undefined>;
    for (const [mode, scan] of Object.entries(progress)) {
      if (!scan || (mode === 'incremental' && state.watermark !== null)) continue;
      saved.add(mode);
      const total = numberOr(scan.estimatedTotal, numberOr(scan.reported, null));
      const fetched = /^\d{1,19}$/.test(scan.scanId) ? (await logicalRunTotals(db, BigInt(scan.scanId))).fetched : 0;
      const expected = total ?? (mode === 'full' ? await vouchers() : null);
      scans.push({ mode, records: expected === null ? null : Math.max(0, expected - fetched) });
    }
  }
  for (const mode of new Set(queuedModes)) {
    if (mode === 'incremental' || saved.has(mode)) continue;
    scans.push({ mode, records: mode === 'full' ? await vouchers() : null });
  }
  return scans;
}

const numberOr = <T>(value: unknown, otherwise: T): number | T => (typeof value === 'number' ? value : otherwise);
