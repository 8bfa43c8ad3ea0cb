/**
 * `voucher-sync backfill` as an operator runs it, against the real Postgres, Redis and fakes: it re-reads a range —
 * Cin7 by CreatedDate (CareCloud by last_change: backfill-carecloud.test.ts) — in slices through the queues, moves no watermark, marks nothing
 * deleted, and asks the fake for nothing outside the range. `--dry-run`: backfill-dry-run.test.ts; bad dates:
 * backfill-arguments.test.ts.
 */
import { Queue } from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';
import { sliceQueueName } from '../../jobs/slices.ts';
import { runCommand } from '../helpers/run-command.ts';
import { createHarness, type Harness } from '../helpers/sync-harness.ts';

const CLI = 'src/cli/main.ts';

let h: Harness | undefined;

afterEach(async () => {
  await h?.close();
  h = undefined;
});

const second = (date: Date) => date.toISOString().replace(/\.\d{3}Z$/, 'Z');
const lines = (text: string) => text.trim().split('\n');

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

async function state(harness: Harness, source: string) {
  return harness.db.syncState.findFirstOrThrow({ where: { source } });
}

async function sliceJobs(harness: Harness, source: string) {
  const queue = new Queue(sliceQueueName(source), { connection: harness.redis, prefix: harness.prefix });
  try {
    return (await queue.getJobs(['completed'])).filter((job) => (job.data as { mode?: string }).mode === 'backfill');
  } finally {
    await queue.close();
  }
}

describe('voucher-sync backfill', () => {
  it('Cin7: re-reads the CreatedDate range in slices, moves no watermark, marks nothing deleted, asks for nothing else', async () => {
    h = await createHarness({ env: { CIN7_PAGE_SIZE: '20', CIN7_SLICE_PAGES: '2' } });
    const harness = h;
    await harness.sync('cin7');
    const before = await state(harness, 'cin7');
    const { from, to, inside, outside } = await middleRange(harness, 'cin7', 'sourceCreatedAt');
    expect(inside.length).toBeGreaterThan(100);
    // Redemptions change no date: only a re-read of the record finds them.
    harness.cin7.store.redeem(inside[5]!, 1);
    harness.cin7.store.redeem(outside[5]!, 1);
    harness.cin7.store.hardDelete(inside[9]!);
    const wheres: (string | null)[] = [];
    harness.cin7.store.onListRequest(({ query }) => void wheres.push(query.get('where')));

    const outcome = await runCommand(
      CLI,
      ['backfill', '--source', 'cin7', '--from', second(from), '--to', second(to)],
      { ...harness.env, LOG_LEVEL: 'warn' },
      { timeoutMs: 60_000 },
    );
    expect(outcome.code, outcome.stderr).toBe(0);
    expect(outcome.stderr).not.toMatch(/error|FAILED/i);
    expect(lines(outcome.stdout)[0]).toBe(
      `range: ${second(from)} to ${second(to)} (UTC, --to exclusive; ${lines(outcome.stdout)[0]!.split('; ')[1]}`,
    );
    expect(outcome.stdout).toMatch(/^cin7 +ok +fetched \d+/m);

    const rows = new Map((await harness.vouchers('cin7')).map((r) => [r.sourceId, r]));
    expect(String(rows.get(inside[5]!)!.redeemedAmount)).toBe(
      String(harness.cin7.store.get(inside[5]!)!.redeemedAmount),
    );
    expect(String(rows.get(outside[5]!)!.redeemedAmount)).not.toBe(
      String(harness.cin7.store.get(outside[5]!)!.redeemedAmount),
    );
    // A backfill marks nothing deleted: only a reconciliation confirms a vanished voucher.
    expect(rows.get(inside[9]!)!.isDeleted).toBe(false);

    const after = await state(harness, 'cin7');
    expect(after.watermark).toEqual(before.watermark);
    expect(after.lastSuccessAt).toEqual(before.lastSuccessAt);
    expect(after.progress).toEqual({});
    const run = await harness.db.syncRun.findFirstOrThrow({ where: { source: 'cin7' }, orderBy: { id: 'desc' } });
    expect(run).toMatchObject({ mode: 'backfill', status: 'succeeded', deleted: 0, watermarkAfter: null });
    expect(run.fetched).toBeGreaterThanOrEqual(inside.length - 1);
    expect(run.fetched).toBeLessThan(inside.length + 40);
    expect((await sliceJobs(harness, 'cin7')).length).toBeGreaterThan(2);

    // Every request named a part of the range, none the whole list.
    expect(wheres.length).toBeGreaterThan(0);
    for (const where of wheres) {
      const bounds = [...(where ?? '').matchAll(/CreatedDate(>=|<)'([^']+)'/g)].map((m) => [m[1], Date.parse(m[2]!)]);
      expect(bounds.find(([op]) => op === '>=')?.[1], where ?? 'no where').toBeGreaterThanOrEqual(from.getTime());
      expect(bounds.find(([op]) => op === '<')?.[1], where ?? 'no where').toBeLessThanOrEqual(to.getTime());
    }
  }, 90_000);
});
