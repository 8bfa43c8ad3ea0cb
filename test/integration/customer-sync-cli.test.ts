/**
 * `voucher-sync sync --source carecloud --customer ID…` refusing what it must — another customer run under way, a
 * paused source, bad arguments (one line, exit 2) — and stopping on Ctrl-C, as an operator meets them.
 */
import type { ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { pauseSource, resumeSource } from '../../src/db/source-control.ts';
import { acquireSourceLock } from '../../src/db/source-lock.ts';
import {
  CLI,
  CUSTOMER_LIST,
  customerRuns,
  customerWith,
  spawnCommand,
  stored,
  syncedHarness,
  watchLists,
} from '../helpers/customer-runs.ts';
import { runCommand } from '../helpers/run-command.ts';
import type { Harness } from '../helpers/sync-harness.ts';

let h: Harness | undefined;
const children: ChildProcess[] = [];

afterEach(async () => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
  await h?.close();
  h = undefined;
});

const synced = async (env?: Record<string, string>) => (h = await syncedHarness(env));

describe('sync --customer, the command', () => {
  // Its commands take seconds each to start on a busy machine: more time than the default, not more work.
  it('one customer run per source at a time, and none while the source is paused', { timeout: 120_000 }, async () => {
    const harness = await synced();
    const args = ['sync', '--source', 'carecloud', '--customer', customerWith(harness, 1).customerId];

    const lock = await acquireSourceLock(harness.databaseUrl, 'carecloud', 'customer');
    const busy = await runCommand(CLI, args, harness.env);
    await lock.release();
    expect(busy.code).toBe(1);
    expect(busy.stderr).toMatch(/a customer run of carecloud is already under way/);
    expect(await customerRuns(harness)).toEqual([]);

    // A paused source makes no request, a customer run's included.
    await pauseSource(harness.db, 'carecloud', 'test', new Date());
    const paused = await runCommand(CLI, args, harness.env);
    await resumeSource(harness.db, 'carecloud', new Date());
    expect(paused.code).toBe(1);
    expect(paused.stderr).toMatch(
      /carecloud is paused: no run is started until voucher-sync resume --source carecloud/,
    );
    expect(await customerRuns(harness)).toEqual([]);
  });

  it('Ctrl-C cancels it after its page: ledger cancelled, exit 130, nothing deleted', async () => {
    const harness = await synced();
    const { customerId, vouchers } = customerWith(harness, 1);
    const args = ['sync', '--source', 'carecloud', '--customer', customerId];
    harness.careCloud.store.hardDelete(vouchers[0]!.voucher_id);
    const lists = watchLists(harness, (info) => CUSTOMER_LIST.test(info.path));
    const command = spawnCommand(args, harness.env, children);
    await lists.holding;
    // Ctrl-C while the customer's list is being read: the request is given up, the run stops.
    command.child.kill('SIGINT');
    const outcome = await command.exited;
    lists.release();

    expect(outcome.code, outcome.stderr).toBe(130);
    expect(outcome.stderr).toMatch(/customer run cancelled/);
    expect((await customerRuns(harness))[0]).toMatchObject({ status: 'cancelled', deleted: 0 });
    expect(await stored(harness, vouchers[0]!.voucher_id)).toMatchObject({ isDeleted: false });
  });

  it('a spent daily budget: says so and for how long, exit 1, instead of waiting', async () => {
    const harness = await synced({ CARECLOUD_DAILY_BUDGET: '100', CARECLOUD_INCREMENTAL_RESERVE: '0' });
    const { limiter } = harness.runtime('carecloud');
    // What other runs spent: the rest of the day's requests.
    for (;;) {
      const usage = await limiter.usage();
      if ((usage.dailyUsed ?? 0) >= 100) break;
      await limiter.acquire();
    }

    const outcome = await runCommand(
      CLI,
      ['sync', '--source', 'carecloud', '--customer', customerWith(harness, 1).customerId],
      harness.env,
    );

    expect(outcome.code).toBe(1);
    expect(outcome.stderr).toMatch(/carecloud customer run stopped, waiting for the daily budget until \d{4}-/);
    const [run] = await customerRuns(harness);
    expect(run).toMatchObject({ status: 'failed', fetched: 0 });
    expect(run!.error).toMatch(/^waiting for the daily budget until /);
  });

  it('bad arguments: one line, exit 2', async () => {
    const env = { DATABASE_URL: 'postgresql://postgres@127.0.0.1:5432/never_used', REDIS_URL: 'redis://127.0.0.1:1' };
    // Each is a process of its own (seconds each on a busy machine): the cases that take different paths.
    const cases: [string[], RegExp][] = [
      [['--source', 'cin7', '--customer', 'a1'], /only carecloud can list: not with --source cin7/],
      [['--source', 'carecloud', '--customer', 'a1', '--mode', 'full'], /cannot be used with option '--mode/],
      [['--source', 'carecloud', '--customer', 'a1', '--customer', 'someone@example.com'], /letters, digits.*"@"/],
      [['--source', 'carecloud', '--customer', ''], /a customer id must not be empty/],
    ];
    const outcomes = await Promise.all(cases.map(([args]) => runCommand(CLI, ['sync', ...args], env)));
    outcomes.forEach((outcome, i) => {
      expect(outcome.code, outcome.stderr).toBe(2);
      expect(outcome.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(outcome.stderr).toMatch(cases[i]![1]);
      expect(outcome.stderr).not.toContain('someone@example.com');
    });
  });
});
