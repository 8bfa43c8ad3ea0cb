/**
 * `voucher-sync cancel` against a full scan read in slices by the workers of another process: the slices under way
 * stop after their page and fail for good (no retry), none waiting its turn is read, and the next run takes them up
 * from where they stopped, so that nothing is missed.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startService, type Service } from '../../jobs/service.ts';
import { sliceQueueName } from '../../jobs/slices.ts';
import { createHarness, type Harness } from '../helpers/sync-harness.ts';
import { runCommand } from '../helpers/run-command.ts';
import { queueOf, requestsSettle, until } from '../helpers/steer.ts';

const MAIN = 'src/cli/main.ts';

let h: Harness | undefined;
let service: Service | undefined;
afterEach(async () => {
  await service?.stop();
  service = undefined;
  await h?.close();
  h = undefined;
});

describe('voucher-sync cancel, a sliced scan', () => {
  it("stops a sliced scan's slices too; the next run takes them up from where they stopped", async () => {
    h = await createHarness({
      // About 125 pages in 30 slices, two at a time, each page a fifth of a second: some 12 s, long enough to cancel in
      // the middle even when the cancel command takes a few seconds to start on a busy machine.
      careCloud: { count: 2400, latencyMs: 200 },
      env: { CARECLOUD_PAGE_SIZE: '20', CARECLOUD_SLICE_PAGES: '4' },
    });
    const harness = h;
    service = await startService(harness.config, harness.logger, { schedulers: false, only: ['carecloud'] });
    const queue = queueOf(harness, 'carecloud');
    const slices = queueOf(harness, sliceQueueName('carecloud'));
    await queue.add('full', { mode: 'full', requestedBy: 'scheduler' }, { jobId: 'sliced' });
    const reading = await until('slices to commit pages', () =>
      harness.db.syncRun.findFirst({ where: { jobId: 'sliced', status: 'running', pages: { gte: 4 } } }),
    );

    const outcome = await runCommand(MAIN, ['cancel', '--source', 'carecloud'], harness.env);
    expect(outcome.code, outcome.stderr).toBe(0);
    expect((await harness.db.syncRun.findUniqueOrThrow({ where: { id: reading.id } })).status).toBe('cancelled');
    await requestsSettle(() => harness.careCloud.stats.requests);
    // No slice is read any more: those under way stopped, failed for good (not retried), and none waits its turn.
    const counts = await slices.getJobCounts('active', 'failed', 'completed');
    expect(counts.active).toBe(0);
    expect(counts.failed).toBeGreaterThan(0);
    const failed = await slices.getFailed();
    for (const slice of failed) expect(slice.failedReason).toMatch(/^cancelled by voucher-sync cancel/);
    expect((await queue.getJob('sliced'))!.returnvalue.stop?.kind).toBe('cancelled');

    await queue.add('full', { mode: 'full', requestedBy: 'scheduler' }, { jobId: 'after' });
    const after = await until(
      'the next run to end',
      () => harness.db.syncRun.findFirst({ where: { jobId: 'after', status: { not: 'running' } } }),
      60_000,
    );
    expect(after.status).toBe('succeeded');
    expect(await slices.getJobCounts('failed', 'active')).toEqual({ failed: 0, active: 0 });
    // Nothing was missed: a fresh, uninterrupted full scan finds no voucher to add and none to change.
    const stored = await harness.db.voucher.count({ where: { source: 'carecloud' } });
    expect(stored).toBeGreaterThan(1100);
    const fresh = await harness.sync('carecloud', 'full');
    expect(fresh.counters).toMatchObject({ inserted: 0, updated: 0, deleted: 0 });
  }, 120_000);
});
