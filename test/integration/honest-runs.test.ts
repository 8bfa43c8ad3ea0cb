/**
 * A run held back by the daily budget or a rate limit is waiting, not failed nor interrupted; the rows its job writes
 * until it is done are one logical run, whose totals are what the table holds; a long run says how far it has come.
 */
import { Queue } from 'bullmq';
import { createSliceDispatcher, createSliceQueue } from '../../jobs/slices.ts';
import { afterEach, describe, expect, it } from 'vitest';
import { waitingOf } from '../../jobs/steer-error.ts';
import { startService, type Service } from '../../jobs/service.ts';
import type { SyncJobData, SyncJobResult } from '../../jobs/queues.ts';
import { logicalRunTotals } from '../../src/db/ledger.ts';
import { acquireSourceLock } from '../../src/db/source-lock.ts';
import { runSync } from '../../src/sync/run-sync.ts';
import { WaitingError } from '../../src/sync/waiting.ts';
import { isServiceCode } from '../../src/fake/carecloud-data.ts';
import { createHarness, type Harness } from '../helpers/sync-harness.ts';

let h: Harness | undefined;
let service: Service | undefined;
afterEach(async () => {
  await service?.stop();
  service = undefined;
  await h?.close();
  h = undefined;
});

async function waitFor<T>(check: () => Promise<T | undefined | null | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const parsed = (lines: string[]) => lines.map((line) => JSON.parse(line) as { level: number; msg: string });

/** Top-level keys written more than once in a JSON line (JSON.parse keeps the last and hides them). */
function repeatedKeys(line: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  for (const match of line.matchAll(/"((?:[^"\\]|\\.)*)"(\s*:)?|[{}[\]]/g)) {
    if (match[0] === '{' || match[0] === '[') depth++;
    else if (match[0] === '}' || match[0] === ']') depth--;
    else if (match[2] && depth === 1) keys.push(match[1]!);
  }
  return keys.filter((key, i) => keys.indexOf(key) !== i);
}

const NO_CARECLOUD = {
  CARECLOUD_BASE_URL: '',
  CARECLOUD_LOGIN: '',
  CARECLOUD_PASSWORD: '',
  CARECLOUD_APP_ID: '',
  CARECLOUD_TIMEZONE: '',
};

describe('honest runs', () => {
  it('a run that spent the daily budget is waiting for it, and resumed it is one logical run with the table its totals', async () => {
    h = await createHarness({
      cin7: { count: 300 },
      env: { ...NO_CARECLOUD, CIN7_DAILY_BUDGET: '8', CIN7_PAGE_SIZE: '25', CIN7_SLICE_PAGES: '1000' },
    });
    const harness = h;
    const queue = new Queue<SyncJobData, SyncJobResult>('cin7', { connection: harness.redis, prefix: harness.prefix });
    try {
      service = await startService(harness.config, harness.logger, { schedulers: false, only: ['cin7'] });
      const job = await queue.add('incremental', { mode: 'incremental', requestedBy: 'cli' }, { jobId: 'budget' });
      const waiting = await waitFor(() => harness.db.syncRun.findFirst({ where: { status: 'waiting' } }));
      expect(waiting).toMatchObject({ waitingReason: 'daily_budget', finishedAt: null, jobId: 'budget' });
      // The budget frees as the oldest requests of the last 24 hours age out: not before a day less a few seconds.
      expect(waiting.waitingUntil!.getTime()).toBeGreaterThan(Date.now() + 23 * 3600_000);
      expect(waiting.error).toContain('waiting for the daily budget until');
      // The job says it waits, and for what, while it has no row running.
      expect(waitingOf((await queue.getJob('budget'))!)).toMatchObject({ reason: 'daily_budget' });

      // A day passes (the limiter's log is emptied), and the service restarts: the job resumes, as often as needed.
      for (let turn = 0; turn < 10; turn++) {
        const done = await harness.db.syncRun.count({ where: { status: 'succeeded' } });
        if (done === 1) break;
        await waitFor(
          async () => (await harness.db.syncRun.count({ where: { status: { in: ['waiting', 'succeeded'] } } })) > 0,
        );
        if ((await harness.db.syncRun.count({ where: { status: 'succeeded' } })) === 1) break;
        await service.stop();
        await harness.redis.del(`${harness.prefix}:limiter:cin7:log`);
        await queue.removeRateLimitKey();
        service = await startService(harness.config, harness.logger, { schedulers: false, only: ['cin7'] });
        await waitFor(
          async () =>
            (await harness.db.syncRun.count({ where: { status: 'running' } })) > 0 ||
            (await harness.db.syncRun.count({ where: { status: 'succeeded' } })) === 1,
        );
      }
      await waitFor(async () => (await job.isCompleted()) || undefined);

      const runs = await harness.db.syncRun.findMany({ orderBy: { id: 'asc' } });
      expect(runs.length).toBeGreaterThanOrEqual(2);
      // One logical run: every row names the first; the earlier ones were closed by the row that continued them.
      expect(new Set(runs.map((r) => r.logicalRunId))).toEqual(new Set([runs[0]!.id]));
      expect(runs.map((r) => r.status)).toEqual([...runs.slice(1).map(() => 'interrupted'), 'succeeded']);
      expect(runs.slice(0, -1).every((r) => r.waitingReason === 'daily_budget' && r.finishedAt !== null)).toBe(true);
      const totals = await logicalRunTotals(harness.db, runs[0]!.id);
      const stored = await harness.db.voucher.count({ where: { source: 'cin7' } });
      expect(stored).toBe(harness.cin7.store.all().length);
      expect(totals.inserted).toBe(stored);
      expect(totals.fetched).toBeGreaterThanOrEqual(stored);
      // What the job returns (and `npm run sync` prints) is the logical run, not its last row.
      const result = (await queue.getJob('budget'))!.returnvalue;
      expect(result.counters).toEqual(totals);
      expect(result.counters.inserted).toBeGreaterThan(runs.at(-1)!.inserted);

      // Planned throttling is no trouble: no warning, and the log says "daily budget" in words.
      const lines = parsed(harness.logLines);
      expect(lines.filter((l) => l.level >= 40).map((l) => l.msg)).toEqual([]);
      expect(lines.some((l) => l.level === 30 && /daily budget/.test(l.msg))).toBe(true);
      // The worker, the run and the source's client each know the source and the job: each key is written once.
      expect(harness.logLines.filter((line) => repeatedKeys(line).length > 0)).toEqual([]);
      expect(lines.some((l) => 'source' in l && 'jobId' in l && 'runId' in l)).toBe(true);
    } finally {
      await queue.close();
    }
  }, 120_000);

  it('a row that continues a run of another job starts a logical run of its own', async () => {
    h = await createHarness({
      env: { ...NO_CARECLOUD, CIN7_DAILY_BUDGET: '5', CIN7_PAGE_SIZE: '25', CIN7_SLICE_PAGES: '1000' },
    });
    await expect(h.sync('cin7')).rejects.toThrow(/daily budget/);
    await h.redis.del(`${h.prefix}:limiter:cin7:log`);
    // Straight through the engine, without a job: the scan resumes, the logical run is new.
    await expect(h.sync('cin7')).rejects.toThrow(/daily budget/);
    const runs = await h.db.syncRun.findMany({ orderBy: { id: 'asc' } });
    expect(runs.map((r) => [r.status, r.logicalRunId])).toEqual([
      ['interrupted', runs[0]!.id],
      ['waiting', runs[1]!.id],
    ]);
    expect(runs[1]!.waitingReason).toBe('daily_budget');
  });

  it('records the total a CareCloud full scan expects, and logs its progress with an ETA', async () => {
    // Pages of 10 that re-read one record while nothing shifts: about 67 pages, so the log reports at 50.
    h = await createHarness({
      careCloud: { count: 600 },
      env: {
        CIN7_USERNAME: '',
        CIN7_API_KEY: '',
        CARECLOUD_PAGE_SIZE: '10',
        CARECLOUD_SLICE_PAGES: '100000',
      },
    });
    const run = await h.sync('carecloud', 'full');
    const expected = h.careCloud.store.all().filter((v) => !isServiceCode(v.code)).length;
    const row = await h.db.syncRun.findUniqueOrThrow({ where: { id: run.runId } });
    expect(row.estimatedTotal).toBe(expected);
    expect(row.pages).toBeGreaterThan(50);
    expect(await h.db.voucher.count()).toBe(expected);
    const progress = parsed(h.logLines).filter((l) => l.msg.startsWith('run in progress')) as unknown as {
      level: number;
      pages: number;
      records: number;
      estimatedTotal: number;
      etaSeconds: number | null;
    }[];
    expect(progress.length).toBeGreaterThanOrEqual(1);
    expect(progress[0]).toMatchObject({ level: 30, pages: 50, estimatedTotal: row.estimatedTotal });
    expect(progress[0]!.etaSeconds).toEqual(expect.any(Number));
  });

  it('records the total a sliced CareCloud scan expects, from its plan', async () => {
    h = await createHarness({
      careCloud: { count: 400 },
      env: { CIN7_USERNAME: '', CIN7_API_KEY: '', CARECLOUD_PAGE_SIZE: '20', CARECLOUD_SLICE_PAGES: '2' },
    });
    const run = await h.sync('carecloud', 'full');
    const expected = h.careCloud.store.all().filter((v) => !isServiceCode(v.code)).length;
    const row = await h.db.syncRun.findUniqueOrThrow({ where: { id: run.runId } });
    expect(h.logLines.some((line) => line.includes('reading the scan in slices'))).toBe(true);
    // A hint: at most one slice (here 2 pages of 20, less their overlap) more than the scan holds.
    expect(row.estimatedTotal).toBeGreaterThanOrEqual(expected);
    expect(row.estimatedTotal).toBeLessThanOrEqual(expected + 40);
  });

  it('a sliced run whose slices are held back by their queue stops waiting for them and is recorded waiting', async () => {
    h = await createHarness({ env: { ...NO_CARECLOUD, CIN7_PAGE_SIZE: '25', CIN7_SLICE_PAGES: '2' } });
    const sliceQueue = createSliceQueue('cin7', h.redis, h.config);
    try {
      // As after a slice met a long wait: the queue is paused, and no worker is there to read the slices anyway.
      await sliceQueue.rateLimit(60_000);
      const runtime = h.runtime('cin7');
      const run = runSync({
        source: 'cin7',
        stream: runtime.streams[0]!,
        mode: 'incremental',
        client: runtime.client,
        db: h.db,
        logger: h.logger,
        settings: runtime.settings,
        jobId: 'sliced',
        slices: createSliceDispatcher(sliceQueue, { maxWaitMs: 1000, pollMs: 50 }),
      });
      await expect(run).rejects.toBeInstanceOf(WaitingError);
      const row = await h.db.syncRun.findFirstOrThrow();
      expect(row).toMatchObject({ status: 'waiting', waitingReason: 'rate_limit', finishedAt: null });
      expect(row.waitingUntil!.getTime()).toBeGreaterThan(Date.now() + 30_000);
    } finally {
      await sliceQueue.close();
    }
  });

  it('a job held behind a run that holds the source says so, and runs when the source is free', async () => {
    h = await createHarness({ env: NO_CARECLOUD });
    const harness = h;
    const lock = await acquireSourceLock(harness.databaseUrl, 'cin7');
    const queue = new Queue<SyncJobData, SyncJobResult>('cin7', { connection: harness.redis, prefix: harness.prefix });
    try {
      service = await startService(harness.config, harness.logger, { schedulers: false, only: ['cin7'] });
      const job = await queue.add('incremental', { mode: 'incremental', requestedBy: 'cli' }, { jobId: 'held' });
      const held = await waitFor(async () => waitingOf((await queue.getJob('held'))!));
      expect(held.reason).toBe('source_busy');
      expect(Date.parse(held.until!)).toBeGreaterThan(Date.now() - 10_000);
      expect(await harness.db.syncRun.count()).toBe(0);
      await lock.release();
      await waitFor(async () => (await job.isCompleted()) || undefined);
      expect(waitingOf((await queue.getJob('held'))!)).toBeNull();
      expect(await harness.db.syncRun.findFirstOrThrow()).toMatchObject({ status: 'succeeded', jobId: 'held' });
    } finally {
      await lock.release();
      await queue.close();
    }
  });
});
