import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { isServiceCode } from '../../src/fake/carecloud-data.ts';
import { runOnce } from '../../jobs/run-once.ts';
import { startService, type Service } from '../../jobs/service.ts';
import { sliceSize } from '../../src/sources/carecloud/slices.ts';
import type { SyncJobData, SyncJobResult } from '../../jobs/queues.ts';
import { createHarness, REDIS_URL, type Harness, type HarnessOptions } from '../helpers/sync-harness.ts';
import { nodeArgsFor } from '../helpers/run-command.ts';

let h: Harness | undefined;
let service: Service | undefined;
const children: ChildProcess[] = [];

afterEach(async () => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
  await service?.stop();
  service = undefined;
  await h?.close();
  h = undefined;
});

async function setUp(options: HarnessOptions = {}) {
  h = await createHarness(options);
  return h;
}

/** A worker process of the real service, as `npm start -- --role worker` runs it. */
function spawnWorker(env: Record<string, string>, output: string[] = []): ChildProcess {
  const child = spawn(process.execPath, [...nodeArgsFor('src/cli/main.ts'), 'start', '--role', 'worker'], {
    env: { PATH: process.env.PATH ?? '', ...env, LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (chunk: Buffer) => output.push(String(chunk)));
  child.stderr!.on('data', (chunk: Buffer) => output.push(String(chunk)));
  children.push(child);
  return child;
}

async function waitFor(check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function overlaps(runs: { startedAt: Date; finishedAt: Date | null }[]): boolean {
  const sorted = [...runs].sort((a, b) => a.startedAt.getTime() - b.startedAt.getTime());
  return sorted.some((run, i) => i > 0 && (sorted[i - 1]!.finishedAt?.getTime() ?? Infinity) > run.startedAt.getTime());
}

describe('through the real queues', () => {
  it('syncs both sources once and reports what it did; a second run writes nothing', async () => {
    const harness = await setUp();
    service = await startService(harness.config, harness.logger, { schedulers: false });
    const first = await runOnce(service, REDIS_URL, harness.prefix, 'incremental', 'cli');
    expect(first.map((o) => o.ok)).toEqual([true, true]);
    const careCloudCount = harness.careCloud.store.all().filter((v) => !isServiceCode(v.code)).length;
    expect(await harness.db.voucher.count({ where: { source: 'carecloud' } })).toBe(careCloudCount);
    expect(await harness.db.voucher.count({ where: { source: 'cin7' } })).toBe(harness.cin7.store.all().length);
    const second = await runOnce(service, REDIS_URL, harness.prefix, 'incremental', 'cli');
    for (const outcome of second)
      expect(outcome.ok && outcome.result.counters).toMatchObject({ inserted: 0, updated: 0, pages: 1 });
  });

  it('schedules incremental syncs and the reconciliation with Job Schedulers', async () => {
    const harness = await setUp({
      env: { CIN7_SCHEDULE: '1h', CIN7_RECONCILE_SCHEDULE: '0 3 * * *', CARECLOUD_FULL_SCHEDULE: 'off' },
    });
    service = await startService(harness.config, harness.logger, { workers: false });
    const cin7 = await service.queues.get('cin7')!.getJobSchedulers();
    expect(cin7.map((s) => [s.key, s.every ?? s.pattern])).toEqual(
      expect.arrayContaining([
        ['cin7-incremental', 3_600_000],
        ['cin7-full', '0 3 * * *'],
      ]),
    );
    const careCloud = await service.queues.get('carecloud')!.getJobSchedulers();
    expect(careCloud.map((s) => s.key)).toEqual(['carecloud-incremental']);
  });

  it('re-creates its schedulers and queue settings after Redis lost its data', async () => {
    const harness = await setUp();
    service = await startService(harness.config, harness.logger, { workers: false, maintenanceMs: 200 });
    const queue = service.queues.get('cin7')!;
    expect(await queue.getJobSchedulersCount()).toBe(2);
    const keys = await harness.redis.keys(`${harness.prefix}:*`);
    await harness.redis.del(...keys);
    expect(await queue.getJobSchedulersCount()).toBe(0);
    await waitFor(
      async () => (await queue.getJobSchedulersCount()) === 2 && Number(await queue.getGlobalConcurrency()) === 1,
      5_000,
    );
  });

  it('fails a job without retrying when the credentials are wrong, with a clear reason', async () => {
    const harness = await setUp({ env: { CIN7_API_KEY: 'wrong-key' } });
    service = await startService(harness.config, harness.logger, { schedulers: false, only: ['cin7'] });
    const [outcome] = await runOnce(service, REDIS_URL, harness.prefix, 'incremental', 'cli');
    expect(outcome).toMatchObject({
      ok: false,
      error: expect.stringContaining('Cin7 rejected the API username or key'),
    });
    expect(outcome && !outcome.ok && outcome.error).not.toContain('wrong-key');
    const [failed] = await service.queues.get('cin7')!.getFailed();
    expect(failed!.attemptsMade).toBe(1);
    expect(await harness.db.syncRun.findFirstOrThrow()).toMatchObject({ status: 'failed' });
  });

  it('pauses the source on a long Retry-After instead of failing, then finishes the same scan', async () => {
    const harness = await setUp({ env: { HTTP_MAX_INLINE_WAIT: '1s' } });
    harness.careCloud.faults.inject({ kind: 'status', status: 429, retryAfter: 2 }, { on: 'list' });
    service = await startService(harness.config, harness.logger, { schedulers: false, only: ['carecloud'] });
    const [outcome] = await runOnce(service, REDIS_URL, harness.prefix, 'incremental', 'cli');
    expect(outcome?.ok).toBe(true);
    const runs = await harness.db.syncRun.findMany({ orderBy: { id: 'asc' } });
    // The first row waited for the rate limit; the row that continued it closed it: one logical run.
    expect(runs.map((r) => r.status)).toEqual(['interrupted', 'succeeded']);
    expect(runs[0]).toMatchObject({ waitingReason: 'rate_limit', waitingUntil: expect.any(Date) });
    expect(runs.map((r) => r.logicalRunId)).toEqual([runs[0]!.id, runs[0]!.id]);
    expect(runs[0]!.error).toContain('wait');
    expect(runs[1]!.startedAt.getTime() - runs[0]!.finishedAt!.getTime()).toBeGreaterThanOrEqual(1500);
  });

  it('retries a run that failed on a passing outage, with backoff, until it succeeds', async () => {
    const harness = await setUp({ env: { HTTP_RETRIES: '1', JOB_BACKOFF: '300ms' } });
    // Two 503s exhaust the request's retries: the first attempt of the job fails, the second succeeds.
    harness.cin7.faults.inject({ kind: 'status', status: 503 }, { on: 'list', times: 2 });
    service = await startService(harness.config, harness.logger, { schedulers: false, only: ['cin7'] });
    const [outcome] = await runOnce(service, REDIS_URL, harness.prefix, 'incremental', 'cli');
    expect(outcome?.ok).toBe(true);
    const runs = await harness.db.syncRun.findMany({ orderBy: { id: 'asc' } });
    expect(runs.map((r) => r.status)).toEqual(['failed', 'succeeded']);
    expect(runs[0]!.error).toContain('503');
    expect(await harness.db.voucher.count()).toBe(harness.cin7.store.all().length);
  });

  it('a requested run waits for the run under way and then makes its own', async () => {
    const harness = await setUp({ cin7: { latencyMs: 100 }, env: { CIN7_PAGE_SIZE: '50' } });
    service = await startService(harness.config, harness.logger, { schedulers: false, only: ['cin7'] });
    const first = runOnce(service, REDIS_URL, harness.prefix, 'full', 'cli');
    await waitFor(async () => (await harness.db.syncRun.count()) === 1);
    const fresh = harness.cin7.store.insert();
    const [second] = await runOnce(service, REDIS_URL, harness.prefix, 'incremental', 'cli');
    await first;
    expect(second?.ok).toBe(true);
    const [full, incremental] = await harness.db.syncRun.findMany({ orderBy: { id: 'asc' } });
    expect(incremental!.startedAt.getTime()).toBeGreaterThanOrEqual(full!.finishedAt!.getTime());
    expect(await harness.db.voucher.count({ where: { sourceId: fresh.code } })).toBe(1);
  });

  it(
    'two worker processes never run a source twice at once and together keep every rate limit',
    { timeout: 150_000 },
    async () => {
      const limits = {
        cin7: [
          { max: 3, windowMs: 1000 },
          { max: 20, windowMs: 5000 },
        ],
        careCloud: [{ max: 5, windowMs: 1000 }],
      };
      const harness = await setUp({
        careCloud: { rateLimits: limits.careCloud, count: 400 },
        cin7: { rateLimits: limits.cin7, count: 400 },
        env: { CIN7_RATE_LIMIT: '3/s,20/5s', CARECLOUD_RATE_LIMIT: '5/s', CIN7_PAGE_SIZE: '100' },
      });
      const output: string[] = [];
      spawnWorker(harness.env, output);
      spawnWorker(harness.env, output);
      // Both processes compete for the jobs from the start.
      await waitFor(async () => output.join('').split('voucher-sync is running').length - 1 === 2);
      const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
      const listeners: QueueEvents[] = [];
      try {
        const finished: Promise<unknown>[] = [];
        for (const source of ['cin7', 'carecloud']) {
          const queue = new Queue<SyncJobData, SyncJobResult>(source, { connection, prefix: harness.prefix });
          const events = new QueueEvents(source, { connection: { url: REDIS_URL }, prefix: harness.prefix });
          listeners.push(events);
          await events.waitUntilReady();
          for (let i = 0; i < 3; i++) {
            const job = await queue.add('full', { mode: 'full', requestedBy: 'cli' }, { jobId: `${source}-${i}` });
            finished.push(job.waitUntilFinished(events, 120_000));
          }
        }
        await Promise.all(finished);
      } finally {
        await Promise.all(listeners.map((e) => e.close()));
        connection.disconnect();
      }
      const runs = await harness.db.syncRun.findMany();
      expect(runs.filter((r) => r.status === 'succeeded')).toHaveLength(6);
      expect(overlaps(runs.filter((r) => r.source === 'cin7'))).toBe(false);
      expect(overlaps(runs.filter((r) => r.source === 'carecloud'))).toBe(false);
      expect(new Set(runs.map((r) => r.worker)).size).toBeGreaterThanOrEqual(1);
      expect(harness.cin7.stats.limitViolations).toBe(0);
      expect(harness.careCloud.stats.limitViolations).toBe(0);
      for (const window of [...harness.cin7.stats.maxInWindow, ...harness.careCloud.stats.maxInWindow]) {
        expect(window.peak).toBeLessThanOrEqual(window.limit);
      }
      // The limit was what bounded the pace: the busiest second used all of it.
      expect(harness.cin7.stats.maxInWindow[0]!.peak).toBe(3);
    },
  );

  it('splits a backfill into slices that every worker process reads, and lands exactly the vouchers', async () => {
    const harness = await setUp({
      careCloud: { count: 1500, latencyMs: 20 },
      env: { CARECLOUD_PAGE_SIZE: '50', CARECLOUD_SLICE_PAGES: '3', CIN7_USERNAME: '', CIN7_API_KEY: '' },
    });
    const output: string[] = [];
    spawnWorker(harness.env, output);
    spawnWorker(harness.env, output);
    await waitFor(async () => output.join('').split('voucher-sync is running').length - 1 === 2);
    const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    const queue = new Queue<SyncJobData, SyncJobResult>('carecloud', { connection, prefix: harness.prefix });
    const slices = new Queue('carecloud-slices', { connection, prefix: harness.prefix });
    try {
      await queue.add('incremental', { mode: 'incremental', requestedBy: 'cli' }, { jobId: 'backfill' });
      await waitFor(async () => (await harness.db.syncRun.count({ where: { status: 'succeeded' } })) === 1, 60_000);
      const expected = harness.careCloud.store.all().filter((v) => !isServiceCode(v.code));
      const rows = await harness.db.voucher.findMany({ select: { sourceId: true } });
      expect(new Set(rows.map((r) => r.sourceId))).toEqual(new Set(expected.map((v) => v.voucher_id)));
      expect(rows).toHaveLength(expected.length);
      const done = await slices.getCompleted();
      // As planned: the slices of pages of 50, overlap 5, at most 3 pages each, for the vouchers listed.
      expect(done.length).toBe(Math.ceil(expected.length / sliceSize({ pageSize: 50, pageOverlap: 5, slicePages: 3 })));
      expect(new Set(done.map((j) => j.processedBy)).size).toBe(2);
      const run = await harness.db.syncRun.findFirstOrThrow();
      expect(run.inserted).toBe(expected.length);
      expect(run.watermarkAfter).not.toBeNull();
      // The next incremental run reads one page: the backfill set the watermark.
      harness.careCloud.stats.reset();
      await queue.add('incremental', { mode: 'incremental', requestedBy: 'cli' }, { jobId: 'after' });
      await waitFor(async () => (await harness.db.syncRun.count({ where: { status: 'succeeded' } })) === 2, 30_000);
      expect(harness.careCloud.stats.byEndpoint['GET /vouchers']).toBe(1);
    } finally {
      await Promise.all([queue.close(), slices.close()]);
      connection.disconnect();
    }
  }, 90_000);

  it('puts back slices that vanished from Redis instead of waiting for them forever', async () => {
    const harness = await setUp({
      careCloud: { count: 1200, latencyMs: 20 },
      env: { CARECLOUD_PAGE_SIZE: '50', CARECLOUD_SLICE_PAGES: '2', CIN7_USERNAME: '', CIN7_API_KEY: '' },
    });
    service = await startService(harness.config, harness.logger, { schedulers: false });
    const slices = new Queue('carecloud-slices', { connection: harness.redis, prefix: harness.prefix });
    const outcome = runOnce(service, REDIS_URL, harness.prefix, 'incremental', 'cli');
    await waitFor(async () => (await slices.getCompletedCount()) >= 1);
    await slices.drain(); // the waiting slices are gone, as after a Redis restart without persistence
    const [result] = await outcome;
    await slices.close();
    expect(result?.ok).toBe(true);
    const expected = harness.careCloud.store.all().filter((v) => !isServiceCode(v.code));
    expect(await harness.db.voucher.count()).toBe(expected.length);
  });

  it('never hands a scan the finished slices of another scan that shared the queues (a recreated database)', async () => {
    const env = { CARECLOUD_PAGE_SIZE: '50', CARECLOUD_SLICE_PAGES: '2', CIN7_USERNAME: '', CIN7_API_KEY: '' };
    const first = await setUp({ careCloud: { count: 600 }, env });
    const firstService = await startService(first.config, first.logger, { schedulers: false });
    try {
      expect((await runOnce(firstService, REDIS_URL, first.prefix, 'incremental', 'cli'))[0]?.ok).toBe(true);
    } finally {
      await firstService.stop();
    }
    // A second database, same Redis prefix: its first run has the same run id, and so the same scan id.
    const second = await createHarness({
      careCloud: { count: 600, seed: 8 },
      env: { ...env, QUEUE_PREFIX: first.prefix },
    });
    try {
      service = await startService(second.config, second.logger, { schedulers: false });
      expect((await runOnce(service, REDIS_URL, first.prefix, 'incremental', 'cli'))[0]?.ok).toBe(true);
      const expected = second.careCloud.store.all().filter((v) => !isServiceCode(v.code));
      expect(await second.db.voucher.count()).toBe(expected.length);
    } finally {
      await service?.stop();
      service = undefined;
      await second.close();
    }
  });

  it('stops gracefully on SIGTERM: the run is interrupted after a committed page and the next worker resumes it', async () => {
    const harness = await setUp({ careCloud: { latencyMs: 150, count: 1500 }, env: { CARECLOUD_PAGE_SIZE: '50' } });
    const output: string[] = [];
    const worker = spawnWorker(harness.env, output);
    const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    const queue = new Queue<SyncJobData, SyncJobResult>('carecloud', { connection, prefix: harness.prefix });
    try {
      await queue.add('full', { mode: 'full', requestedBy: 'cli' }, { jobId: 'graceful' });
      await waitFor(async () => ((await harness.db.syncRun.findFirst())?.pages ?? 0) >= 3);
      worker.kill('SIGTERM');
      const [code] = await once(worker, 'exit');
      expect(code, output.join('')).toBe(0);
      const interrupted = await harness.db.syncRun.findFirstOrThrow();
      expect(interrupted.status).toBe('interrupted');
      const state = await harness.db.syncState.findFirstOrThrow({ where: { source: 'carecloud' } });
      expect(state.progress).toHaveProperty('full');
      // Every committed page is counted in the run that was current when it committed.
      expect(await harness.db.voucher.count()).toBe(interrupted.inserted);

      spawnWorker(harness.env, output);
      await waitFor(async () => (await harness.db.syncRun.count({ where: { status: 'succeeded' } })) === 1, 60_000);
      const resumed = await harness.db.syncRun.findFirstOrThrow({ where: { status: 'succeeded' } });
      const expected = harness.careCloud.store.all().filter((v) => !isServiceCode(v.code)).length;
      // Read again: slices left waiting in the queue may commit a page before the resumed run claims the scan,
      // and such a page counts in the interrupted run, still the scan's run when it committed.
      const interruptedAtEnd = await harness.db.syncRun.findUniqueOrThrow({ where: { id: interrupted.id } });
      expect(interruptedAtEnd.inserted + resumed.inserted).toBe(expected);
      expect(await harness.db.voucher.count()).toBe(expected);
      expect(resumed.pages).toBeLessThan(Math.ceil(expected / 45) + 2);
    } finally {
      await queue.close();
      connection.disconnect();
    }
  }, 90_000);
});

describe('npm run sync', () => {
  function runSyncCommand(args: string[], env: Record<string, string>) {
    const child = spawn(process.execPath, [...nodeArgsFor('src/cli/main.ts'), 'sync', ...args], {
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: string[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(String(c)));
    child.stderr.on('data', (c: Buffer) => out.push(String(c)));
    return once(child, 'exit').then(([code]) => ({ code: code as number, output: out.join('') }));
  }

  it('says what was wrong in one line and exits 2 on bad arguments', async () => {
    const bad = await runSyncCommand(['--source', 'shopify'], {});
    expect(bad.code).toBe(2);
    expect(bad.output.trim()).toBe(
      "error: option '--source <name>' argument 'shopify' is invalid. Allowed choices are carecloud, cin7, all.",
    );
    expect((await runSyncCommand(['--source', 'cin7', '--mode', 'sometimes'], {})).code).toBe(2);
    expect((await runSyncCommand(['--bogus'], {})).code).toBe(2);
  });

  it('exits 1 with one line naming a bad variable', async () => {
    const result = await runSyncCommand(['--source', 'cin7'], {
      CIN7_USERNAME: 'x',
      CIN7_API_KEY: 'y',
      CIN7_PAGE_SIZE: 'lots',
    });
    expect(result.code).toBe(1);
    expect(result.output.trim()).toBe(
      'Configuration error: CIN7_PAGE_SIZE must be a whole number from 1 to 250 (got "lots")',
    );
  });

  it('syncs a source through the queues and prints a summary', async () => {
    const harness = await setUp();
    const result = await runSyncCommand(['--source', 'cin7'], { ...harness.env, LOG_LEVEL: 'warn' });
    expect(result.output).toMatch(
      /cin7\s+ok\s+fetched \d+, inserted \d+, updated 0, unchanged \d+, rejected 0, deleted 0/,
    );
    expect(result.code).toBe(0);
    expect(await harness.db.voucher.count({ where: { source: 'cin7' } })).toBe(harness.cin7.store.all().length);
  });
});
