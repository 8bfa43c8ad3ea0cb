/**
 * `voucher-sync cancel`, run as an operator runs it — a process of its own — against a run read by a service in
 * another process: the run stops after its page and is recorded `cancelled`, its job is not retried, a sliced scan's
 * slices stop too, and the next run resumes the scan from its saved progress.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startService, type Service } from '../../jobs/service.ts';
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

describe('voucher-sync cancel', () => {
  it('stops a run in another process after its page; the job is not retried; the next run resumes the scan', async () => {
    h = await createHarness({
      cin7: { count: 1500, latencyMs: 30 },
      env: { CIN7_PAGE_SIZE: '10', CIN7_SLICE_PAGES: '100000' },
    });
    const harness = h;
    service = await startService(harness.config, harness.logger, { schedulers: false, only: ['cin7'] });
    const queue = queueOf(harness, 'cin7');
    await queue.add('full', { mode: 'full', requestedBy: 'scheduler' }, { jobId: 'under-way' });
    const reading = await until('the run to read a few pages', () =>
      harness.db.syncRun.findFirst({ where: { jobId: 'under-way', status: 'running', pages: { gte: 3 } } }),
    );

    const outcome = await runCommand(MAIN, ['cancel', '--source', 'cin7'], harness.env);
    expect(outcome.code, outcome.stderr).toBe(0);
    expect(outcome.stdout).toContain(`cin7: run ${reading.id} (full) cancelled`);

    const row = await harness.db.syncRun.findUniqueOrThrow({ where: { id: reading.id } });
    expect(row.status).toBe('cancelled');
    expect(row.error).toMatch(/^cancelled by voucher-sync cancel, .+ at \d{4}-/);
    expect(row.cancelRequestedBy).toMatch(/^voucher-sync cancel, /);
    expect(row.fetched).toBeGreaterThan(0);
    expect(row.fetched).toBeLessThan(1500);
    // What was read is stored: every page committed before the stop.
    expect(await harness.db.voucher.count({ where: { source: 'cin7' } })).toBe(row.fetched);
    // The job is over, not failed nor put back: BullMQ does not retry it, and the source is read no more.
    const job = (await queue.getJob('under-way'))!;
    expect(await job.getState()).toBe('completed');
    expect(job.returnvalue.stop).toMatchObject({ kind: 'cancelled', reason: expect.stringContaining('cancelled by') });
    const settled = await requestsSettle(() => harness.cin7.stats.requests);
    expect(await queue.getJobCounts('failed', 'delayed', 'waiting', 'active')).toEqual({
      failed: 0,
      delayed: 0,
      waiting: 0,
      active: 0,
    });
    expect((await harness.db.syncState.findFirstOrThrow({ where: { source: 'cin7' } })).progress).toHaveProperty(
      'full',
    );

    // The next run starts normally and resumes the saved scan: it reads what the cancelled one had not.
    await queue.add('full', { mode: 'full', requestedBy: 'scheduler' }, { jobId: 'next' });
    const next = await until('the next run to succeed', () =>
      harness.db.syncRun.findFirst({ where: { jobId: 'next', status: { not: 'running' } } }),
    );
    expect(next.status).toBe('succeeded');
    expect(next.fetched).toBeLessThan(1500);
    expect(row.fetched + next.fetched).toBeGreaterThanOrEqual(1500);
    expect(harness.cin7.stats.requests).toBeGreaterThan(settled);
    expect(await harness.db.voucher.count({ where: { source: 'cin7', isDeleted: false } })).toBe(1500);
  }, 120_000);

  it('cancels a run held back at once, and removes its job; with nothing under way it says so', async () => {
    h = await createHarness();
    const harness = h;
    const queue = queueOf(harness, 'cin7');
    const idle = await runCommand(MAIN, ['cancel', '--source', 'cin7'], harness.env);
    expect(idle.code).toBe(0);
    expect(idle.stdout.trim()).toBe('Nothing to cancel: no run of cin7 is under way.');

    // A run waiting for the daily budget: its row says so, its job waits in the queue until then.
    await queue.add(
      'incremental',
      { mode: 'incremental', requestedBy: 'scheduler' },
      { jobId: 'held', delay: 3_600_000 },
    );
    const held = await harness.db.syncRun.create({
      data: {
        source: 'cin7',
        stream: 'vouchers',
        mode: 'incremental',
        status: 'waiting',
        jobId: 'held',
        waitingReason: 'daily_budget',
        waitingUntil: new Date(Date.now() + 3_600_000),
      },
    });
    const outcome = await runCommand(MAIN, ['cancel', '--source', 'cin7'], harness.env);
    expect(outcome.code, outcome.stderr).toBe(0);
    expect(outcome.stdout).toContain(`cin7: run ${held.id} (incremental) was waiting; cancelled.`);
    const row = await harness.db.syncRun.findUniqueOrThrow({ where: { id: held.id } });
    expect(row).toMatchObject({
      status: 'cancelled',
      error: expect.stringMatching(/^cancelled by voucher-sync cancel/),
    });
    expect(row.finishedAt).not.toBeNull();
    expect(await queue.getJob('held')).toBeUndefined();
    expect(harness.cin7.stats.requests).toBe(0);
  }, 60_000);

  it('exits 2 with one line on each bad argument', async () => {
    const cases: [string[], string][] = [
      [[], "required option '--source <name>' not specified"],
      [['--source', 'nowhere'], "'nowhere' is invalid"],
      [['--source', 'cin7', '--wait', 'soon'], 'a whole number from 0'],
    ];
    const outcomes = await Promise.all(cases.map(([args]) => runCommand(MAIN, ['cancel', ...args], {})));
    outcomes.forEach((outcome, i) => {
      expect(outcome.code).toBe(2);
      expect(outcome.stderr.trim().split('\n')).toHaveLength(1);
      expect(outcome.stderr).toContain(cases[i]![1]);
    });
  }, 60_000);
});
