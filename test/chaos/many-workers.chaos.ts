/**
 * Many workers: three worker processes and a scheduler, on one source at a time and on both, with the
 * fakes enforcing rate limits equal to the configured ones and data that keeps changing. Never two runs of
 * a source at once (ledger intervals), never over a limit (the fakes count every request), and a worker
 * SIGKILLed while it holds a run blocks its source for a bounded time, measured from the kill to the start
 * of the source's next run.
 *
 * The three scenarios run side by side (own database, fakes and queue prefix each) to keep the wall time down.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import type { FakeStats } from '../../src/fake/fake-server.ts';
import { createHarness, REDIS_URL, type Harness } from '../helpers/sync-harness.ts';
import { overlappingRuns } from './ground-truth.ts';
import { ensureInfraUp } from './infra.ts';
import { Fleet } from './process-controller.ts';
import { createQueueClient, type SourceName } from './queue-runs.ts';

/** The README: BullMQ's job lock (30 s) plus the stalled-job check (every 30 s), "about a minute". */
const BLOCK_BOUND_MS = 75_000;

const LIMITS = {
  carecloud: {
    fake: [
      { max: 5, windowMs: 1000 },
      { max: 40, windowMs: 10_000 },
    ],
    env: '5/s,40/10s',
  },
  cin7: {
    fake: [
      { max: 3, windowMs: 1000 },
      { max: 20, windowMs: 5000 },
    ],
    env: '3/s,20/5s',
  },
};

interface ScenarioResult {
  name: string;
  sources: SourceName[];
  runs: { source: string; status: string; worker: string | null }[];
  overlaps: string[];
  leftRunning: number;
  stats: Partial<Record<SourceName, FakeStats>>;
  /** Per kill: the source, and ms from the SIGKILL to the start of that source's next run. */
  blocks: { source: SourceName; ms: number }[];
  unmeasured: string[];
  crashes: string[];
}

/** Environment that leaves a source out of the config (its credentials unset). */
const without = (source: SourceName): Record<string, string> =>
  source === 'cin7'
    ? { CIN7_USERNAME: '', CIN7_API_KEY: '' }
    : {
        CARECLOUD_BASE_URL: '',
        CARECLOUD_LOGIN: '',
        CARECLOUD_PASSWORD: '',
        CARECLOUD_APP_ID: '',
        CARECLOUD_TIMEZONE: '',
      };

const pidOf = (worker: string | null) => Number(/:(\d+)$/.exec(worker ?? '')?.[1] ?? -1);

/** Workers compete for `phaseMs`, then each kill is measured, then they compete for `phaseMs` again. */
async function scenario(
  name: string,
  sources: SourceName[],
  kills: number,
  phaseMs: number,
  logRoot: string,
): Promise<ScenarioResult> {
  const h: Harness = await createHarness({
    careCloud: {
      seed: 11,
      count: 300,
      rateLimits: LIMITS.carecloud.fake,
      latencyMs: 20,
      churn: { everyMs: 500, changes: 2 },
    },
    cin7: { seed: 11, count: 300, rateLimits: LIMITS.cin7.fake, latencyMs: 20, churn: { everyMs: 700, changes: 1 } },
    env: {
      LOG_LEVEL: 'info',
      CARECLOUD_RATE_LIMIT: LIMITS.carecloud.env,
      CARECLOUD_PAGE_SIZE: '20',
      CARECLOUD_SCHEDULE: '1s',
      CARECLOUD_FULL_SCHEDULE: '5s',
      CIN7_RATE_LIMIT: LIMITS.cin7.env,
      CIN7_PAGE_SIZE: '25',
      CIN7_SCHEDULE: '1s',
      CIN7_RECONCILE_SCHEDULE: '6s',
      JOB_BACKOFF: '500ms',
      ...(sources.includes('carecloud') ? {} : without('carecloud')),
      ...(sources.includes('cin7') ? {} : without('cin7')),
    },
  });
  h.redis.on('error', () => undefined);
  const logDir = join(logRoot, name.replace(/\W+/g, '-'));
  const fleet = new Fleet({ env: h.env, workers: 3, scheduler: true, logDir });
  const queues = createQueueClient(REDIS_URL, h.prefix);
  const blocks: ScenarioResult['blocks'] = [];
  const unmeasured: string[] = [];
  let failed = true;
  try {
    await fleet.start();
    // Explicit runs on top of the schedules: the queues always have something waiting.
    let requesting = true;
    const requests = (async () => {
      for (let i = 0; requesting; i++) {
        for (const source of sources)
          await queues.enqueue(source, i % 3 === 0 ? 'full' : 'incremental').catch(() => undefined);
        await sleep(1500);
      }
    })();
    await sleep(phaseMs);

    for (let k = 0; k < kills; k++) {
      const source = sources[k % sources.length]!;
      const deadline = Date.now() + 60_000;
      let measured = false;
      while (Date.now() < deadline && !measured) {
        const run = await h.db.syncRun.findFirst({ where: { source, status: 'running' }, orderBy: { id: 'desc' } });
        const slot = run ? fleet.workerByPid(pidOf(run.worker)) : undefined;
        if (!run || !slot) {
          await sleep(100);
          continue;
        }
        await sleep(Math.random() * 300);
        const killedAt = Date.now();
        await slot.stop('SIGKILL');
        const still = await h.db.syncRun.findUnique({ where: { id: run.id } });
        void slot.start().catch(() => undefined); // the other two workers are there meanwhile
        if (still?.status !== 'running') continue; // the run ended just before the kill: try again
        for (;;) {
          const next = await h.db.syncRun.findFirst({ where: { source, id: { gt: run.id } }, orderBy: { id: 'asc' } });
          if (next) {
            blocks.push({ source, ms: next.startedAt.getTime() - killedAt });
            break;
          }
          if (Date.now() - killedAt > 3 * BLOCK_BOUND_MS) {
            blocks.push({ source, ms: Date.now() - killedAt });
            break;
          }
          await sleep(250);
        }
        measured = true;
      }
      if (!measured) unmeasured.push(`no run of ${source} was under way to kill within 60 s`);
    }
    await sleep(phaseMs);
    requesting = false;
    await requests;
    await queues.removeSchedulers();
    await fleet.stop('SIGTERM');

    const runs = await h.db.syncRun.findMany({ orderBy: { id: 'asc' } });
    const overlaps = sources.flatMap((source) =>
      overlappingRuns(runs.filter((r) => r.source === source)).map(
        ([a, b]) =>
          `${source}: run ${a.id} (${a.status}, ${a.worker}) and run ${b.id} (${b.status}, ${b.worker}) overlap`,
      ),
    );
    const stats: ScenarioResult['stats'] = {};
    if (sources.includes('carecloud')) stats.carecloud = h.careCloud.stats;
    if (sources.includes('cin7')) stats.cin7 = h.cin7.stats;
    failed = false;
    return {
      name,
      sources,
      runs: runs.map((r) => ({ source: r.source, status: r.status, worker: r.worker })),
      overlaps,
      leftRunning: runs.filter((r) => r.status === 'running').length,
      stats,
      blocks,
      unmeasured,
      crashes: fleet.crashes.map(
        (c) => `${c.name} exited on its own (code ${c.code}): ${c.tail.slice(-2).join(' | ').slice(0, 300)}`,
      ),
    };
  } finally {
    await fleet.stop('SIGKILL').catch(() => undefined);
    await queues.close();
    await h.close();
    if (!failed) rmSync(logDir, { recursive: true, force: true });
  }
}

function describeResult(r: ScenarioResult): string {
  const byStatus = new Map<string, number>();
  for (const run of r.runs)
    byStatus.set(`${run.source} ${run.status}`, (byStatus.get(`${run.source} ${run.status}`) ?? 0) + 1);
  const lines = [
    `  ${r.name}: ${r.runs.length} runs (${[...byStatus].map(([k, v]) => `${v} ${k}`).join(', ')}), by ${new Set(r.runs.map((x) => x.worker)).size} worker processes`,
  ];
  for (const [source, stats] of Object.entries(r.stats)) {
    const peaks = stats.maxInWindow.map((w) => `${w.peak}/${w.limit} per ${w.windowMs} ms`).join(', ');
    lines.push(
      `    ${source}: ${stats.requests} requests, limit violations ${stats.limitViolations}, busiest windows ${peaks}`,
    );
  }
  if (r.blocks.length > 0)
    lines.push(
      `    SIGKILL while holding a run → next run of the source started after: ${r.blocks.map((b) => `${b.source} ${(b.ms / 1000).toFixed(1)} s`).join(', ')}`,
    );
  for (const line of [...r.overlaps, ...r.unmeasured, ...r.crashes]) lines.push(`    ${line}`);
  return lines.join('\n');
}

const results: ScenarioResult[] = [];
const logRoot = join(tmpdir(), `voucher-sync-workers-${Date.now().toString(36)}`);

afterAll(async () => {
  await ensureInfraUp();
  if (results.length === 0) return;
  const blocks = results.flatMap((r) => r.blocks.map((b) => b.ms));
  console.log(
    [
      '==== many workers (3 worker processes + a scheduler per scenario)',
      ...results.map(describeResult),
      blocks.length > 0
        ? `  a source blocked by a worker killed while running it: ${blocks.length} kills, longest ${(Math.max(...blocks) / 1000).toFixed(1)} s, median ${(blocks.sort((a, b) => a - b)[Math.floor(blocks.length / 2)]! / 1000).toFixed(1)} s (bound asserted: ${BLOCK_BOUND_MS / 1000} s)`
        : '  no kill measured',
    ].join('\n'),
  );
});

describe('many workers', () => {
  it('one source at a time and both: never two runs of a source at once, never over a limit, a dead worker blocks its source for a bounded time', async () => {
    await ensureInfraUp();
    const settled = await Promise.allSettled([
      scenario('cin7 alone', ['cin7'], 1, 20_000, logRoot),
      scenario('carecloud alone', ['carecloud'], 1, 20_000, logRoot),
      scenario('both sources', ['carecloud', 'cin7'], 2, 15_000, logRoot),
    ]);
    for (const s of settled) if (s.status === 'fulfilled') results.push(s.value);
    expect(
      settled.filter((s) => s.status === 'rejected').map((s) => String((s as PromiseRejectedResult).reason)),
    ).toEqual([]);

    for (const r of results) {
      expect(r.overlaps, r.name).toEqual([]);
      expect(r.leftRunning, `${r.name}: runs left 'running'`).toBe(0);
      expect(r.crashes, r.name).toEqual([]);
      expect(r.unmeasured, r.name).toEqual([]);
      for (const source of r.sources) {
        const stats = r.stats[source]!;
        expect(stats.limitViolations, `${r.name}: ${source} limit violations`).toBe(0);
        for (const window of stats.maxInWindow)
          expect(window.peak, `${r.name}: ${source} peak per ${window.windowMs} ms`).toBeLessThanOrEqual(window.limit);
        // The test only means something if the workers competed: many runs, by more than one process.
        const own = r.runs.filter((run) => run.source === source);
        expect(
          own.filter((run) => run.status === 'succeeded').length,
          `${r.name}: ${source} succeeded runs`,
        ).toBeGreaterThanOrEqual(3);
        expect(
          new Set(own.map((run) => run.worker)).size,
          `${r.name}: ${source} worker processes`,
        ).toBeGreaterThanOrEqual(2);
      }
      for (const block of r.blocks)
        expect(block.ms, `${r.name}: ${block.source} blocked after a SIGKILL`).toBeLessThanOrEqual(BLOCK_BOUND_MS);
    }
  });
});
