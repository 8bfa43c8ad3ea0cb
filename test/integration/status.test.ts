/**
 * readStatus against the real Postgres, Redis and fakes: what `npm run status`, `/api/status` and the page show in
 * each state a source can be in, and that the service's absence is told apart from its idleness.
 */
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { readHeartbeats, startHeartbeat } from '../../jobs/heartbeat.ts';
import { createSourceQueue } from '../../jobs/queues.ts';
import { runOnce } from '../../jobs/run-once.ts';
import { startService, type Service } from '../../jobs/service.ts';
import { readStatus } from '../../src/status/read-status.ts';
import type { SourceStatus, StatusReport } from '../../src/status/types.ts';
import { createHarness, REDIS_URL, type Harness, type HarnessOptions } from '../helpers/sync-harness.ts';

let h: Harness | undefined;
let service: Service | undefined;

afterEach(async () => {
  await service?.stop();
  service = undefined;
  await h?.close();
  h = undefined;
});

async function setUp(options: HarnessOptions = {}) {
  h = await createHarness(options);
  return h;
}

const status = (harness: Harness, now?: Date) =>
  readStatus({ db: harness.db, redis: harness.redis, config: harness.config, now });

const sourceOf = (report: StatusReport, name: string): SourceStatus => report.sources.find((s) => s.source === name)!;

async function waitFor<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out; last value: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

describe('readStatus', () => {
  it('after a sync: idle, fresh, its last success, next runs, limits and budget; the service told apart', async () => {
    const harness = await setUp({ env: { CIN7_SCHEDULE: '10m', CIN7_DAILY_BUDGET: '5000', CIN7_RATE_LIMIT: '50/s' } });
    const before = await status(harness);
    expect(before.serviceUp).toBe(false);
    expect(before.processes).toEqual([]);
    expect(before.sources.map((s) => s.source)).toEqual(['carecloud', 'cin7']);
    expect(sourceOf(before, 'cin7')).toMatchObject({ state: 'idle', lastSuccessAt: null, freshnessSeconds: null });

    const result = await harness.sync('cin7');
    service = await startService(harness.config, harness.logger, { workers: false });
    const report = await status(harness);
    expect(report.serviceUp).toBe(true);
    expect(report.processes).toEqual([
      expect.objectContaining({ role: 'scheduler', pid: process.pid, sources: ['carecloud', 'cin7'] }),
    ]);
    const cin7 = sourceOf(report, 'cin7');
    expect(cin7).toMatchObject({
      configured: true,
      state: 'idle',
      stale: false,
      // 10 minutes plus the default ALERT_STALE_AFTER.
      staleAfterSeconds: 600 + harness.config.alerts.staleMarginMs / 1000,
      run: null,
      waiting: null,
      consecutiveFailures: 0,
      lastError: null,
      rejectedOpen: 0,
    });
    expect(Date.parse(cin7.lastSuccessAt!)).toBeGreaterThanOrEqual(Date.parse(report.at) - 60_000);
    expect(cin7.freshnessSeconds).toBeLessThan(60);
    expect(cin7.nextRuns.map((r) => r.mode).sort()).toEqual(['full', 'incremental']);
    expect(cin7.limits).toEqual([{ window: '1s', windowSeconds: 1, used: expect.any(Number), limit: 50 }]);
    expect(cin7.budget).toEqual({ used: result.counters.apiCalls, limit: 5000, windowSeconds: 86_400 });

    await service.stop();
    service = undefined;
    expect((await status(harness)).serviceUp).toBe(false);
  });

  it('a process that dies stops counting once its heartbeat lapses; one that stops says so at once', async () => {
    const harness = await setUp();
    const doomed = new Redis(REDIS_URL);
    await startHeartbeat(doomed, harness.prefix, { role: 'worker', sources: ['cin7'] }, { intervalMs: 200 });
    const stopping = await startHeartbeat(harness.redis, harness.prefix, { role: 'scheduler', sources: [] });
    expect((await readHeartbeats(harness.redis, harness.prefix)).map((p) => p.role).sort()).toEqual([
      'scheduler',
      'worker',
    ]);
    doomed.disconnect();
    await waitFor(
      () => readHeartbeats(harness.redis, harness.prefix),
      (live) => live.length === 1,
    );
    expect((await status(harness)).serviceUp).toBe(true);
    await stopping.stop();
    expect(await status(harness)).toMatchObject({ serviceUp: false, processes: [] });
  });

  it('is stale once its data is older than the schedule plus the margin, and for a source never synced', async () => {
    const harness = await setUp({ env: { CIN7_SCHEDULE: '10m', ALERT_STALE_AFTER: '5m' } });
    expect(sourceOf(await status(harness), 'cin7').stale).toBe(true);
    await harness.sync('cin7');
    const soon = new Date(Date.now() + 14 * 60_000);
    expect(sourceOf(await status(harness, soon), 'cin7')).toMatchObject({ stale: false, staleAfterSeconds: 900 });
    const late = new Date(Date.now() + 16 * 60_000);
    const stale = sourceOf(await status(harness, late), 'cin7');
    expect(stale).toMatchObject({ stale: true, state: 'idle' });
    expect(stale.freshnessSeconds).toBeGreaterThan(900);
  });

  it('a cron schedule is stale after its longest gap', async () => {
    const harness = await setUp({ env: { CIN7_SCHEDULE: '0 3 * * *', ALERT_STALE_AFTER: '0s' } });
    expect(sourceOf(await status(harness), 'cin7').staleAfterSeconds).toBe(86_400);
  });

  it('after forced failures: failing, the error and how many in a row; a cancelled run counts for nothing', async () => {
    const harness = await setUp({ env: { CIN7_API_KEY: 'wrong-api-key' } });
    service = await startService(harness.config, harness.logger, { schedulers: false, only: ['cin7'] });
    for (let i = 0; i < 2; i++) await runOnce(service, REDIS_URL, harness.prefix, 'incremental', 'cli');
    const failing = sourceOf(await status(harness), 'cin7');
    expect(failing).toMatchObject({
      state: 'failing',
      consecutiveFailures: 2,
      lastError: { message: expect.stringContaining('Cin7 rejected the API username or key') },
      queue: { failed: 2 },
    });
    expect(JSON.stringify(failing)).not.toContain('wrong-api-key');

    await harness.db.syncRun.create({
      data: { source: 'cin7', stream: 'vouchers', mode: 'incremental', status: 'cancelled', finishedAt: new Date() },
    });
    expect(sourceOf(await status(harness), 'cin7')).toMatchObject({ state: 'failing', consecutiveFailures: 2 });
    await harness.db.syncRun.create({
      data: { source: 'cin7', stream: 'vouchers', mode: 'incremental', status: 'succeeded', finishedAt: new Date() },
    });
    expect(sourceOf(await status(harness), 'cin7')).toMatchObject({
      state: 'idle',
      consecutiveFailures: 0,
      lastError: null,
    });
  });

  it('after the daily budget is spent: waiting for the daily budget, with its usage and the run held', async () => {
    const harness = await setUp({ env: { CIN7_DAILY_BUDGET: '3', CIN7_PAGE_SIZE: '50', CIN7_SLICE_PAGES: '2' } });
    service = await startService(harness.config, harness.logger, { schedulers: false, only: ['cin7'] });
    await service.queues.get('cin7')!.add('incremental', { mode: 'incremental', requestedBy: 'cli' });
    const report = await waitFor(
      () => status(harness),
      (r) => sourceOf(r, 'cin7').state === 'waiting',
    );
    const cin7 = sourceOf(report, 'cin7');
    expect(cin7.budget).toEqual({ used: 3, limit: 3, windowSeconds: 86_400 });
    expect(cin7.waiting?.reason).toBe('daily_budget');
    // The oldest request of the 24 hours leaves them a day after it was made: within a minute of a day from now.
    expect(Date.parse(cin7.waiting!.until!) - Date.parse(report.at)).toBeGreaterThan(86_340_000);
    expect(cin7.run).toMatchObject({ mode: 'incremental', requests: expect.any(Number) });
    expect(cin7.run!.requests).toBeLessThanOrEqual(3);
  });

  it('paused when its queue is paused, whatever else holds', async () => {
    const harness = await setUp();
    const queue = await createSourceQueue('cin7', harness.redis, harness.config.jobs);
    await queue.pause();
    await queue.close();
    const report = await status(harness);
    expect(sourceOf(report, 'cin7').state).toBe('paused');
    expect(sourceOf(report, 'carecloud').state).toBe('idle');
  });

  it('lists a source whose credentials are absent, not configured and never stale', async () => {
    const harness = await setUp({ env: { CIN7_USERNAME: '', CIN7_API_KEY: '' } });
    const cin7 = sourceOf(await status(harness), 'cin7');
    expect(cin7).toMatchObject({ configured: false, state: 'idle', stale: false, limits: [], budget: null });
  });

  it('every field of a real report is documented in docs/status.md', async () => {
    const harness = await setUp({ env: { CIN7_DAILY_BUDGET: '5000' } });
    await harness.sync('cin7');
    service = await startService(harness.config, harness.logger, { workers: false });
    // A run held back and a failure before it, as the ledger records them, so that no part of the report is null.
    const started = new Date(Date.now() - 60_000);
    await harness.db.syncRun.create({
      data: {
        source: 'carecloud',
        stream: 'vouchers',
        mode: 'full',
        status: 'failed',
        error: 'CareCloud answered 500',
        startedAt: new Date(Date.now() - 120_000),
        finishedAt: started,
      },
    });
    await harness.db.syncRun.create({
      data: {
        source: 'carecloud',
        stream: 'vouchers',
        mode: 'full',
        status: 'waiting',
        startedAt: started,
        heartbeatAt: new Date(),
        pages: 3,
        fetched: 300,
        apiCalls: 3,
        estimatedTotal: 1000,
        waitingReason: 'rate_limit',
        waitingUntil: new Date(Date.now() + 30_000),
      },
    });
    const report = await status(harness);
    const careCloud = sourceOf(report, 'carecloud');
    expect(careCloud).toMatchObject({ state: 'waiting', waiting: { reason: 'rate_limit' }, consecutiveFailures: 1 });
    expect(careCloud.run).toMatchObject({ records: 300, estimatedTotal: 1000, etaSeconds: expect.any(Number) });

    const docs = readFileSync(new URL('../../docs/status.md', import.meta.url), 'utf8');
    const documented = new Set([...docs.matchAll(/`([\w[\].]+)`/g)].map((m) => m[1]));
    const missing = fieldPaths(report).filter((path) => !documented.has(path));
    expect(missing).toEqual([]);
  });
});

/** Every field's path in a report, arrays as `[]`: `sources[].run.etaSeconds`. */
function fieldPaths(value: unknown, path = ''): string[] {
  if (Array.isArray(value)) return [...new Set(value.flatMap((item) => fieldPaths(item, `${path}[]`)))];
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([key, child]) => {
    const here = path === '' ? key : `${path}.${key}`;
    return [here, ...fieldPaths(child, here)];
  });
}
