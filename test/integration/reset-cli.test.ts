/**
 * `voucher-sync reset` as an operator runs it: it forgets a source's watermark and saved progress so that the next
 * run is a first backfill, keeps the vouchers, refuses without --yes off a terminal and while a run holds the source,
 * and `--dry-run` says what the next run would cost without changing anything.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { acquireSourceLock } from '../../src/db/source-lock.ts';
import { runCommand } from '../helpers/run-command.ts';
import { createHarness, type Harness } from '../helpers/sync-harness.ts';

const CLI = 'src/cli/main.ts';

let h: Harness | undefined;

afterEach(async () => {
  await h?.close();
  h = undefined;
});

const lines = (text: string) => text.trim().split('\n');

describe('voucher-sync reset', () => {
  it('forgets the watermark and saved progress, keeps the vouchers; the next run is a first backfill', async () => {
    h = await createHarness({ env: { CIN7_PAGE_SIZE: '50', CIN7_SLICE_PAGES: '2' } });
    const harness = h;
    await harness.sync('cin7');
    // Another source's state, which must stay as it is.
    await harness.db.syncState.create({ data: { source: 'carecloud', stream: 'vouchers', watermark: new Date() } });
    // An unfinished full scan, with the keys it had seen.
    const controller = new AbortController();
    const stop = harness.cin7.store.onListRequest(({ n }) => void (n === 12 && controller.abort()));
    await expect(harness.sync('cin7', 'full', { signal: controller.signal })).rejects.toThrow();
    stop();
    const before = await harness.db.syncState.findFirstOrThrow({ where: { source: 'cin7' } });
    expect(before.watermark).not.toBeNull();
    expect(Object.keys(before.progress as object)).toContain('full');
    expect(await harness.db.scanSeen.count()).toBeGreaterThan(0);
    const vouchers = await harness.db.voucher.count({ where: { source: 'cin7' } });
    const careBefore = await harness.db.syncState.findFirstOrThrow({ where: { source: 'carecloud' } });

    const refused = await runCommand(CLI, ['reset', '--source', 'cin7'], harness.env);
    expect(refused.code).toBe(2);
    expect(lines(refused.stderr)).toEqual([
      'error: reset asks for confirmation and stdin is not a terminal: add --yes to reset cin7',
    ]);
    expect((await harness.db.syncState.findFirstOrThrow({ where: { source: 'cin7' } })).watermark).toEqual(
      before.watermark,
    );

    const outcome = await runCommand(CLI, ['reset', '--source', 'cin7', '--yes'], {
      ...harness.env,
      LOG_LEVEL: 'warn',
    });
    expect(outcome.code, outcome.stderr).toBe(0);
    expect(outcome.stdout).toContain(`cin7/vouchers: forgot watermark ${before.watermark!.toISOString()}`);
    expect(outcome.stdout).toContain(`kept ${vouchers} vouchers; the next run of cin7 is a first backfill`);
    const after = await harness.db.syncState.findFirstOrThrow({ where: { source: 'cin7' } });
    expect(after).toMatchObject({ watermark: null, progress: null, lastSuccessAt: null });
    expect(await harness.db.scanSeen.count()).toBe(0);
    expect(await harness.db.voucher.count({ where: { source: 'cin7' } })).toBe(vouchers);
    // Another source is left as it was.
    expect(await harness.db.syncState.findFirstOrThrow({ where: { source: 'carecloud' } })).toEqual(careBefore);

    // The next run reads the whole list again, in slices, as a first backfill does.
    const next = await harness.sync('cin7');
    expect(next.watermarkBefore).toBeNull();
    expect(next.counters.fetched).toBeGreaterThanOrEqual(harness.cin7.store.all().length);
    expect(next.watermarkAfter).not.toBeNull();
  }, 90_000);

  it('refuses while a run of the source holds it: one line, exit 1, nothing changed', async () => {
    h = await createHarness();
    const harness = h;
    await harness.sync('cin7');
    const before = await harness.db.syncState.findFirstOrThrow({ where: { source: 'cin7' } });
    const lock = await acquireSourceLock(harness.databaseUrl, 'cin7');
    try {
      const outcome = await runCommand(CLI, ['reset', '--source', 'cin7', '--yes'], harness.env);
      expect(outcome.code).toBe(1);
      expect(lines(outcome.stderr)).toHaveLength(1);
      expect(outcome.stderr).toContain('a run of cin7 is under way');
      expect(outcome.stderr).toContain('it would write its watermark back');
    } finally {
      await lock.release();
    }
    expect(await harness.db.syncState.findFirstOrThrow({ where: { source: 'cin7' } })).toEqual(before);
  }, 60_000);

  it('--dry-run says what the next run would cost and changes nothing', async () => {
    h = await createHarness({ env: { CIN7_DAILY_BUDGET: '5000', CIN7_RATE_LIMIT: '3/s,60/min' } });
    const harness = h;
    await harness.sync('cin7');
    const before = await harness.db.syncState.findMany({ orderBy: { source: 'asc' } });
    const runs = await harness.db.syncRun.count();
    const requests = harness.cin7.stats.requests;
    const stored = await harness.db.voucher.count({ where: { source: 'cin7', isDeleted: false } });

    const outcome = await runCommand(CLI, ['reset', '--source', 'cin7', '--dry-run'], {
      ...harness.env,
      CIN7_DAILY_BUDGET: '5000',
      CIN7_RATE_LIMIT: '3/s,60/min',
      LOG_LEVEL: 'warn',
    });
    expect(outcome.code, outcome.stderr).toBe(0);
    expect(outcome.stdout).toContain('dry run: nothing changed');
    expect(outcome.stdout).toContain(`records:  about ${stored} in all, as our table holds them`);
    // 600 records at 250 a request, plus the plan: a few requests of the 5,000, at 1 a second (60/min).
    expect(outcome.stdout).toMatch(/requests: about \d requests: 0 % of the daily budget of 5,000/);
    expect(outcome.stdout).toMatch(/time: +about \d+ s at the configured limits/);
    expect(harness.cin7.stats.requests).toBe(requests);
    expect(await harness.db.syncState.findMany({ orderBy: { source: 'asc' } })).toEqual(before);
    expect(await harness.db.syncRun.count()).toBe(runs);
  }, 60_000);
});
