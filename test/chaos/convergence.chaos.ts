/**
 * No voucher lost, duplicated or corrupted under hostile conditions: for every seed, a random schedule of
 * source changes (between runs and while scans page), API faults, bad records and process faults (workers
 * SIGKILLed at random moments and while they run, scheduler restarts, PostgreSQL and Redis restarts), then
 * calm, the final runs, and the table against the fakes' ground truth.
 *
 * CHAOS_SEEDS picks the seeds (`1-24`, `7`, `3,9,12`; default 1-24), CHAOS_BATCH how many run side by side
 * (default 8). Logs of the service processes of a failing seed are kept (their path is printed).
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { formatReports, parseSeeds, runBatch, unknownMismatches } from './chaos-batch.ts';
import type { ChaosProfile } from './schedule.ts';
import type { SeedReport } from './seed-run.ts';
import { bump, type Counts } from './source-chaos.ts';

const SEEDS = parseSeeds(
  process.env.CHAOS_SEEDS,
  Array.from({ length: 24 }, (_, i) => i + 1),
);
const BATCH = Number(process.env.CHAOS_BATCH ?? 8);
const batches = Array.from({ length: Math.ceil(SEEDS.length / BATCH) }, (_, i) =>
  SEEDS.slice(i * BATCH, (i + 1) * BATCH),
);

const PROFILE: ChaosProfile = {
  durationMs: 45_000,
  changes: 40,
  pagingChanges: 25,
  faults: 30,
  workerKills: 2,
  killsDuringRun: 2,
  schedulerRestarts: 1,
  enqueues: 6,
  deepScans: 2,
  deepBursts: 6,
  streamPerSecond: { carecloud: 8, cin7: 3 },
  workers: 2,
  count: [200, 400],
};

const reports: SeedReport[] = [];
const infra: Counts = {};
const logRoot = join(tmpdir(), `voucher-sync-chaos-${Date.now().toString(36)}`);

afterAll(() => {
  if (reports.length > 0) console.log(formatReports(reports, 'convergence under chaos', infra));
});

describe('convergence under chaos', () => {
  it.each(batches.map((seeds) => [seeds.join(','), seeds] as const))(
    'seeds %s: nothing lost, duplicated or corrupted',
    async (_label, seeds) => {
      const { reports: batch, infra: restarts } = await runBatch({
        seeds,
        profile: PROFILE,
        scheduler: true,
        restarts: { redis: 1, postgres: 1 },
        logRoot,
      });
      reports.push(...batch);
      for (const [kind, n] of Object.entries(restarts)) bump(infra, kind, n);
      console.log(formatReports(batch, `seeds ${seeds.join(', ')}`, restarts));
      expect(batch.filter((r) => r.error !== undefined).map((r) => `seed ${r.seed}: ${r.error}`)).toEqual([]);
      expect(
        batch.flatMap((r) =>
          unknownMismatches(r)
            .slice(0, 5)
            .map((m) => `seed ${r.seed} ${m.source} ${m.kind} ${m.id}: ${m.detail.slice(0, 200)}`),
        ),
      ).toEqual([]);
    },
  );
});
