/**
 * The fast subset of the chaos suite (`npm run test:chaos`, test/chaos/): two short seeds side by side,
 * each with a worker process of the real service, explicit runs through the queues, source changes between
 * runs and while scans page, API faults, every kind of bad record, and the worker stopped (SIGTERM at any
 * moment, SIGKILL while idle). Then calm, the final runs, and the table against the fakes' ground truth.
 * No PostgreSQL or Redis restarts and no SIGKILL inside a run here: those take minutes (see test/chaos).
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { formatReports, runBatch, unknownMismatches } from '../chaos/chaos-batch.ts';
import type { ChaosProfile } from '../chaos/schedule.ts';
import { createHarness, type Harness } from '../helpers/sync-harness.ts';

const FAST: ChaosProfile = {
  durationMs: 14_000,
  changes: 12,
  pagingChanges: 10,
  faults: 12,
  workerKills: 2,
  killsDuringRun: 0,
  schedulerRestarts: 0,
  enqueues: 12,
  deepScans: 1,
  deepBursts: 3,
  streamPerSecond: { carecloud: 4, cin7: 2 },
  workers: 1,
  count: [120, 200],
  killOnlyWhenIdle: true,
};

describe('convergence under chaos (fast subset)', () => {
  it('two short seeds: nothing lost, duplicated or corrupted', async () => {
    const { reports } = await runBatch({
      seeds: [101, 102],
      profile: FAST,
      scheduler: false,
      restarts: { redis: 0, postgres: 0 },
      logRoot: join(tmpdir(), `voucher-sync-convergence-${Date.now().toString(36)}`),
    });
    const report = formatReports(reports, 'convergence under chaos, fast subset');
    console.log(report);
    expect(
      reports.filter((r) => r.error !== undefined).map((r) => `seed ${r.seed}: ${r.error}`),
      report,
    ).toEqual([]);
    expect(
      reports.flatMap((r) =>
        unknownMismatches(r)
          .slice(0, 5)
          .map((m) => `seed ${r.seed} ${m.source} ${m.kind} ${m.id}: ${m.detail.slice(0, 200)}`),
      ),
      report,
    ).toEqual([]);
    // The chaos happened: changes, faults served, bad records, stopped workers, every row compared.
    for (const r of reports) {
      expect(Object.values(r.changes).reduce((a, b) => a + b, 0)).toBeGreaterThan(20);
      expect(r.faultsServed).toBeGreaterThan(0);
      expect(Object.keys(r.malformed)).toHaveLength(11);
      expect(r.rowsChecked).toBeGreaterThan(200);
    }
    // Full scans and first backfills of both sources were read in slices, by the worker.
    for (const source of ['carecloud', 'cin7'])
      expect(
        reports.reduce((n, r) => n + (r.slicedScans[source] ?? 0), 0),
        source,
      ).toBeGreaterThan(0);
  }, 180_000);
});

describe('known issues found by the chaos suite (focused reproductions)', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('sets aside a Cin7 voucher whose customerID is not a number, with the reason', async () => {
    h = await createHarness({ cin7: { seed: 3, count: 20 } });
    const bad = h.cin7.store.insertMalformed('wrong-type');
    await h.sync('cin7', 'full');
    expect(await h.db.voucher.count({ where: { source: 'cin7', sourceId: String(bad.code) } })).toBe(0);
    const rejected = await h.db.rejectedRecord.findMany({ where: { source: 'cin7' } });
    expect(rejected.map((r) => (r.raw as { code?: unknown }).code)).toContain(bad.code);
  });
});
