/**
 * The source lock: one run per source at a time. A run that loses its lock (its connection cut, as a
 * PostgreSQL restart cuts it) stops instead of going on beside the next run, and a run that a later run
 * has superseded can commit nothing more — no page, no progress, no watermark.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { QueueEvents } from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';
import { startService } from '../../jobs/service.ts';
import { isServiceCode } from '../../src/fake/carecloud-data.ts';
import { acquireSourceLock, SourceBusyError, type SourceLock } from '../../src/db/source-lock.ts';
import { AbortedError } from '../../src/errors.ts';
import { abandonRunning } from '../../src/db/ledger.ts';
import { overlappingRuns } from '../chaos/ground-truth.ts';
import { createHarness, type Harness } from '../helpers/sync-harness.ts';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

/** Polls `check` every 50 ms, at most `tries` times; true once it held. */
async function eventually(check: () => Promise<boolean>, tries = 400): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    if (await check()) return true;
    await sleep(50);
  }
  return false;
}

/** The lock as any worker takes it: trying again while another run holds it. */
async function takeLock(databaseUrl: string, source: string): Promise<SourceLock> {
  for (let i = 0; ; i++) {
    try {
      return await acquireSourceLock(databaseUrl, source);
    } catch (error) {
      if (!(error instanceof SourceBusyError) || i >= 600) throw error;
      await sleep(50);
    }
  }
}

describe('source lock', () => {
  it('is held by one run at a time, and released when the run ends', async () => {
    h = await createHarness();
    const first = await acquireSourceLock(h.databaseUrl, 'carecloud');
    await expect(acquireSourceLock(h.databaseUrl, 'carecloud')).rejects.toThrow(SourceBusyError);
    const other = await acquireSourceLock(h.databaseUrl, 'cin7');
    await first.release();
    const again = await acquireSourceLock(h.databaseUrl, 'carecloud');
    expect(first.lost.aborted || again.lost.aborted || other.lost.aborted).toBe(false);
    await Promise.all([again.release(), other.release()]);
  });

  it('says it is lost when its connection is cut', async () => {
    h = await createHarness();
    const lock = await acquireSourceLock(h.databaseUrl, 'carecloud');
    await h.db.$executeRawUnsafe(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'voucher-sync lock carecloud'",
    );
    expect(await eventually(async () => lock.lost.aborted)).toBe(true);
    expect(lock.lost.reason).toBeInstanceOf(AbortedError);
    expect(String(lock.lost.reason.message)).toMatch(/lock on carecloud was lost/);
    await lock.release();
  });

  // Chaos seed 10 found this: a PostgreSQL restart released the lock while the run went on; once Redis had
  // also lost the job, another worker took the source and both ran at once.
  it('a run whose lock was lost stops, and the next run of the source does not overlap it', async () => {
    h = await createHarness({ careCloud: { seed: 5, count: 800, latencyMs: 60 }, env: { CARECLOUD_PAGE_SIZE: '20' } });
    const harness = h;
    const service = await startService(harness.config, harness.logger, { schedulers: false, only: ['carecloud'] });
    const events = new QueueEvents(service.queues.get('carecloud')!.name, {
      connection: harness.redis.duplicate(),
      prefix: harness.config.jobs.prefix,
    });
    try {
      const job = await service.queues
        .get('carecloud')!
        .add('incremental', { mode: 'incremental', requestedBy: 'cli' }, { jobId: 'first' });
      expect(await eventually(async () => ((await harness.db.syncRun.findFirst())?.pages ?? 0) >= 3)).toBe(true);
      await harness.db.$executeRawUnsafe(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'voucher-sync lock carecloud'",
      );
      expect(await eventually(async () => (await harness.db.syncRun.findFirstOrThrow()).status !== 'running')).toBe(
        true,
      );
      const lock = await takeLock(harness.databaseUrl, 'carecloud');
      try {
        await harness.sync('carecloud', 'incremental');
      } finally {
        await lock.release();
      }
      await job.waitUntilFinished(events, 60_000);
    } finally {
      await events.close();
      await service.stop();
    }
    const runs = await harness.db.syncRun.findMany({ orderBy: { id: 'asc' } });
    expect(runs[0]).toMatchObject({
      status: 'interrupted',
      error: expect.stringMatching(/lock on carecloud was lost/),
    });
    expect(runs.filter((r) => r.status === 'running')).toEqual([]);
    expect(overlappingRuns(runs).map(([a, b]) => `${a.id} (${a.status}) overlaps ${b.id} (${b.status})`)).toEqual([]);
    expect(await harness.db.voucher.count({ where: { source: 'carecloud' } })).toBe(
      harness.careCloud.store.all().filter((v) => !isServiceCode(v.code)).length,
    );
  }, 120_000);

  it('a superseded run commits nothing more and leaves the watermark where it was', async () => {
    h = await createHarness({ careCloud: { seed: 6, count: 100 }, env: { CARECLOUD_PAGE_SIZE: '10' } });
    const harness = h;
    await harness.sync('carecloud', 'incremental');
    const before = await harness.db.syncState.findFirstOrThrow({ where: { source: 'carecloud' } });
    const changed = harness.careCloud.store
      .all()
      .filter((v) => !isServiceCode(v.code))
      .slice(0, 60)
      .map((v) => harness.careCloud.store.update(v.voucher_id, { note: 'changed after the first run' }));
    let requests = 0;
    // While the second run pages, a later run (holding the lock this one lost) marks it abandoned.
    const stop = harness.careCloud.store.onListRequest(() => {
      if (++requests === 3) void abandonRunning(harness.db, 'carecloud', 'vouchers', new Date());
    });
    await expect(harness.sync('carecloud', 'incremental')).rejects.toThrow(/no longer running/);
    stop();
    const second = await harness.db.syncRun.findFirstOrThrow({ orderBy: { id: 'desc' } });
    expect(second.status).toBe('abandoned');
    const after = await harness.db.syncState.findFirstOrThrow({ where: { source: 'carecloud' } });
    expect(after.watermark).toEqual(before.watermark);
    // Pages of the superseded run after it was abandoned were rolled back: fewer than all changes stored.
    const stored = await harness.db.voucher.findMany({
      where: { source: 'carecloud', sourceId: { in: changed.map((v) => v.voucher_id) } },
    });
    expect(
      stored.filter((r) => (r.raw as { note?: string }).note === 'changed after the first run').length,
    ).toBeLessThan(changed.length);
    // The next run reads them all.
    await harness.sync('carecloud', 'incremental');
    const final = await harness.db.voucher.findMany({
      where: { source: 'carecloud', sourceId: { in: changed.map((v) => v.voucher_id) } },
    });
    expect(final.filter((r) => (r.raw as { note?: string }).note === 'changed after the first run')).toHaveLength(
      changed.length,
    );
  });
});
