/**
 * `voucher-sync backfill --dry-run`: the records, the requests and their share of the daily budget, and the time at
 * the configured limits — and nothing changed: no ledger row, no job, no watermark; the fake asked only for the
 * cheap count (CareCloud: one-record requests; Cin7, which tells no count: nothing, our table is counted).
 */
import { Queue } from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';
import { runCommand } from '../helpers/run-command.ts';
import { createHarness, type Harness } from '../helpers/sync-harness.ts';

const CLI = 'src/cli/main.ts';

let h: Harness | undefined;

afterEach(async () => {
  await h?.close();
  h = undefined;
});

const second = (date: Date) => date.toISOString().replace(/\.\d{3}Z$/, 'Z');

/** A range holding the stored vouchers from the `low`-th to the `high`-th fraction, by `field`, in whole seconds. */
async function middleRange(harness: Harness, source: string, field: 'sourceCreatedAt' | 'sourceModifiedAt') {
  const rows = await harness.db.voucher.findMany({
    where: { source, [field]: { not: null } },
    orderBy: { [field]: 'asc' },
    select: { sourceId: true, [field]: true },
  });
  const at = (i: number) => (rows[i] as Record<string, unknown>)[field] as Date;
  const from = new Date(Math.ceil(at(Math.floor(rows.length * 0.3)).getTime() / 1000) * 1000);
  const to = new Date(Math.ceil(at(Math.floor(rows.length * 0.6)).getTime() / 1000) * 1000);
  const inside = rows.filter((r) => at(rows.indexOf(r)) >= from && at(rows.indexOf(r)) < to).map((r) => r.sourceId);
  const outside = rows.filter((r) => at(rows.indexOf(r)) < from).map((r) => r.sourceId);
  return { from, to, inside, outside };
}

describe('voucher-sync backfill --dry-run', () => {
  it('--dry-run prints the requests and their share of the daily budget, and changes nothing', async () => {
    h = await createHarness({ env: { CIN7_DAILY_BUDGET: '5000' } });
    const harness = h;
    await harness.sync('cin7');
    await harness.sync('carecloud');
    const runs = await harness.db.syncRun.count();
    const states = await harness.db.syncState.findMany({ orderBy: { source: 'asc' } });
    const { from, to, inside } = await middleRange(harness, 'cin7', 'sourceCreatedAt');
    const cin7Before = harness.cin7.stats.requests;

    const cin7 = await runCommand(
      CLI,
      ['backfill', '--source', 'cin7', '--from', second(from), '--to', second(to), '--dry-run'],
      { ...harness.env, LOG_LEVEL: 'warn' },
    );
    expect(cin7.stderr).toBe('');
    expect(cin7.code).toBe(0);
    expect(cin7.stdout).toContain(`records:  about ${inside.length} in the range, as our table holds them`);
    expect(cin7.stdout).toMatch(/requests: about \d+ requests: \d+ % of the daily budget of 5,000/);
    expect(cin7.stdout).toMatch(/time: +about \d+ (s|min) at the configured limits/);
    // Cin7 tells no count: the estimate cost it nothing.
    expect(harness.cin7.stats.requests).toBe(cin7Before);

    const care = await middleRange(harness, 'carecloud', 'sourceModifiedAt');
    const counts: number[] = [];
    harness.careCloud.store.onListRequest(({ query }) => void counts.push(Number(query.get('count'))));
    const carecloud = await runCommand(
      CLI,
      ['backfill', '--source', 'carecloud', '--from', second(care.from), '--to', second(care.to), '--dry-run'],
      { ...harness.env, LOG_LEVEL: 'warn' },
    );
    expect(carecloud.code).toBe(0);
    expect(carecloud.stdout).toContain(`records:  about ${care.inside.length} in the range, as carecloud counts them`);
    expect(carecloud.stdout).toContain('(no daily budget)');
    // Only the cheap probes: one record each.
    expect(counts.length).toBeGreaterThan(0);
    expect(counts.every((c) => c === 1)).toBe(true);

    expect(await harness.db.syncRun.count()).toBe(runs);
    expect(await harness.db.syncState.findMany({ orderBy: { source: 'asc' } })).toEqual(states);
    for (const source of ['cin7', 'carecloud']) {
      const queue = new Queue(source, { connection: harness.redis, prefix: harness.prefix });
      expect(await queue.getJobCountByTypes('waiting', 'active', 'delayed', 'completed', 'failed')).toBe(0);
      await queue.close();
    }
  }, 90_000);
});
