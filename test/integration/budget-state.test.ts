/**
 * Runs of different modes interleave while a reconciliation is spread over days by the budget plan: whatever order
 * their writes land in, neither writes back a watermark or a saved progress older than the other's.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { completeScan, loadState, saveScanProgress, type ScanState } from '../../src/db/stream-state.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

let database: TestDatabase | undefined;

afterEach(async () => {
  await database?.drop();
  database = undefined;
});

const scan = (position: number, startedAt: string): ScanState => ({
  scan: { position },
  highMark: null,
  scanId: '1',
  startedAt,
});

describe('the stream state of interleaved runs', () => {
  it('keeps the newer watermark and every other mode’s saved progress as it stands', async () => {
    database = await createTestDatabase();
    const db = database.prisma;
    const now = new Date('2026-12-02T03:00:00.000Z');
    const older = new Date('2026-12-01T00:00:00.000Z');
    const newer = new Date('2026-12-02T02:55:00.000Z');
    // A reconciliation loads the state and saves its progress; an incremental run then saves its own and finishes.
    const loaded = await loadState(db, 'cin7', 'vouchers');
    expect(loaded.watermark).toBeNull();
    await db.$transaction((tx) => saveScanProgress(tx, 'cin7', 'vouchers', 'full', scan(10, older.toISOString()), now));
    await db.$transaction((tx) =>
      saveScanProgress(tx, 'cin7', 'vouchers', 'incremental', scan(1, newer.toISOString()), now),
    );
    await db.$transaction((tx) =>
      completeScan(tx, { source: 'cin7', stream: 'vouchers', mode: 'incremental', runId: 2n, watermark: newer, now }),
    );
    // The reconciliation goes on from where it stood and finishes with the watermark of its own, older, start.
    await db.$transaction((tx) => saveScanProgress(tx, 'cin7', 'vouchers', 'full', scan(20, older.toISOString()), now));
    let state = await loadState(db, 'cin7', 'vouchers');
    expect(state.watermark).toEqual(newer);
    expect(state.progress.full?.scan).toEqual({ position: 20 });
    expect(state.progress.incremental).toBeUndefined();

    await db.$transaction((tx) =>
      saveScanProgress(tx, 'cin7', 'vouchers', 'backfill', scan(5, older.toISOString()), now),
    );
    await db.$transaction((tx) =>
      completeScan(tx, {
        source: 'cin7',
        stream: 'vouchers',
        mode: 'full',
        runId: 1n,
        watermark: older,
        fullScanStartedAt: older,
        now,
      }),
    );
    state = await loadState(db, 'cin7', 'vouchers');
    expect(state.watermark).toEqual(newer);
    expect(state.progress).toEqual({ backfill: scan(5, older.toISOString()) });
    const row = await db.syncState.findFirstOrThrow({ where: { source: 'cin7' } });
    expect(row.lastFullScanAt).toEqual(older);
  });
});
