/**
 * `voucher-sync runs` (the ledger, readable and as JSON) and `voucher-sync retry` (failed jobs back to the queue), as
 * an operator runs them, against the real Postgres, Redis and fakes.
 */
import { Queue } from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';
import type { SyncJobData, SyncJobResult } from '../../jobs/queues.ts';
import { startService, type Service } from '../../jobs/service.ts';
import { createHarness, type Harness } from '../helpers/sync-harness.ts';
import { runCommand } from '../helpers/run-command.ts';
import { until } from '../helpers/steer.ts';

const MAIN = 'src/cli/main.ts';

let h: Harness | undefined;
let service: Service | undefined;
const queues: Queue[] = [];
afterEach(async () => {
  await Promise.all(queues.splice(0).map((q) => q.close()));
  await service?.stop();
  service = undefined;
  await h?.close();
  h = undefined;
});

describe('voucher-sync runs', () => {
  it('lists the ledger newest first, readable and as JSON', async () => {
    h = await createHarness();
    const harness = h;
    const first = await harness.sync('cin7');
    const failed = await harness.db.syncRun.create({
      data: {
        source: 'cin7',
        stream: 'vouchers',
        mode: 'full',
        status: 'failed',
        startedAt: new Date(Date.now() - 90_000),
        finishedAt: new Date(Date.now() - 30_000),
        fetched: 1234,
        apiCalls: 13,
        error: `Cin7 answered 503 Service Unavailable: ${'the upstream is down; '.repeat(10)}`,
      },
    });
    await harness.sync('carecloud');

    const [text, json, bad] = await Promise.all([
      runCommand(MAIN, ['runs', '--source', 'cin7'], harness.env),
      runCommand(MAIN, ['runs', '--json', '--limit', '2'], harness.env),
      runCommand(MAIN, ['runs', '--limit', '0'], harness.env),
    ]);
    expect(text.code, text.stderr).toBe(0);
    const lines = text.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(
      /^id +part of +source +mode +status +started \(UTC\) +duration +fetched +inserted +updated +deleted +rejected +requests +error$/,
    );
    expect(lines).toHaveLength(3);
    expect(lines[1]).toMatch(
      new RegExp(
        `^ *${failed.id} +cin7 +full +failed +\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d +1m +1,234 .* 13 +Cin7 answered 503`,
      ),
    );
    // The error is cut to fit a line; the JSON has it whole.
    expect(lines[1]).toMatch(/…$/);
    expect(lines[2]).toMatch(
      new RegExp(
        `^ *${first.runId} +cin7 +incremental +succeeded .* ${first.counters.fetched.toLocaleString('en-US')} `,
      ),
    );

    expect(json.code, json.stderr).toBe(0);
    const rows = JSON.parse(json.stdout) as Record<string, unknown>[];
    expect(rows.map((r) => [r.source, r.status])).toEqual([
      ['carecloud', 'succeeded'],
      ['cin7', 'failed'],
    ]);
    expect(rows[1]).toMatchObject({
      id: String(failed.id),
      logicalRunId: String(failed.id),
      mode: 'full',
      durationSeconds: 60,
      fetched: 1234,
      requests: 13,
      error: failed.error,
    });

    expect(bad.code).toBe(2);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toContain("option '--limit <n>' argument '0' is invalid");
  }, 90_000);
});

describe('voucher-sync retry', () => {
  it("moves the source's failed jobs back to its queue, and says how many", async () => {
    h = await createHarness({ env: { JOB_ATTEMPTS: '1' } });
    const harness = h;
    const queue = new Queue<SyncJobData, SyncJobResult>('cin7', { connection: harness.redis, prefix: harness.prefix });
    queues.push(queue);
    const none = runCommand(MAIN, ['retry', '--source', 'carecloud'], harness.env);

    // Two runs that fail for good: the API refuses their first request.
    harness.cin7.faults.inject({ kind: 'status', status: 400 }, { on: 'list', times: 2 });
    service = await startService(harness.config, harness.logger, { schedulers: false, only: ['cin7'] });
    await queue.add('incremental', { mode: 'incremental', requestedBy: 'scheduler' }, { jobId: 'first' });
    await queue.add('incremental', { mode: 'incremental', requestedBy: 'scheduler' }, { jobId: 'second' });
    await until('two failed jobs', async () => (await queue.getFailedCount()) === 2);
    expect((await none).stdout.trim()).toBe('carecloud has no failed jobs.');

    const retried = await runCommand(MAIN, ['retry', '--source', 'cin7'], harness.env);
    expect(retried.code, retried.stderr).toBe(0);
    expect(retried.stdout.trim()).toBe(
      'Moved 2 failed jobs of cin7 back to the queue (voucher-sync status --watch follows them).',
    );
    // Back in the queue, the worker reads them again: this time the API answers.
    await until('both jobs to complete', async () => (await queue.getCompletedCount()) === 2);
    expect(await queue.getFailedCount()).toBe(0);
    const runs = await harness.db.syncRun.findMany({ where: { source: 'cin7' }, orderBy: { id: 'asc' } });
    // Each job failed once, then (in whichever order the queue hands them out) succeeded.
    expect(runs.slice(0, 2).map((r) => [r.jobId, r.status])).toEqual([
      ['first', 'failed'],
      ['second', 'failed'],
    ]);
    expect(
      runs
        .slice(2)
        .map((r) => [r.jobId, r.status])
        .sort(),
    ).toEqual([
      ['first', 'succeeded'],
      ['second', 'succeeded'],
    ]);
  }, 90_000);
});
