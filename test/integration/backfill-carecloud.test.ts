/**
 * `voucher-sync backfill --source carecloud`: CareCloud has no filter on last_change, so the range is found by a
 * binary search of the list sorted by it (one-record requests), and only the slices of that part are read; changes
 * in the range that kept their last_change are found, those outside it are not read. No watermark moves.
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

describe('voucher-sync backfill --source carecloud', () => {
  it('CareCloud: finds the last_change range by binary search and re-reads only it', async () => {
    h = await createHarness({ env: { CARECLOUD_PAGE_SIZE: '20', CARECLOUD_SLICE_PAGES: '2' } });
    const harness = h;
    await harness.sync('carecloud');
    const before = await state(harness, 'carecloud');
    const { from, to, inside, outside } = await middleRange(harness, 'carecloud', 'sourceModifiedAt');
    expect(inside.length).toBeGreaterThan(100);
    // Changed without a new last_change (as a lost update would look): only a re-read of the record finds it.
    for (const id of [inside[0]!, inside.at(-1)!, inside[40]!, outside[3]!]) {
      const voucher = harness.careCloud.store.get(id)!;
      harness.careCloud.store.update(id, { note: 'backfilled', last_change: voucher.last_change });
    }
    const counts: number[] = [];
    harness.careCloud.store.onListRequest(({ query }) => void counts.push(Number(query.get('count'))));

    const outcome = await runCommand(
      CLI,
      ['backfill', '--source', 'carecloud', '--from', second(from), '--to', second(to)],
      { ...harness.env, LOG_LEVEL: 'warn' },
      { timeoutMs: 60_000 },
    );
    expect(outcome.code, outcome.stderr).toBe(0);
    expect(outcome.stderr).not.toMatch(/error|FAILED/i);

    const rows = new Map((await harness.vouchers('carecloud')).map((r) => [r.sourceId, r]));
    const noteOf = (id: string) => (rows.get(id)!.raw as { note?: unknown }).note;
    for (const id of [inside[0]!, inside.at(-1)!, inside[40]!]) expect(noteOf(id), id).toBe('backfilled');
    expect(noteOf(outside[3]!)).not.toBe('backfilled');
    const after = await state(harness, 'carecloud');
    expect(after.watermark).toEqual(before.watermark);
    const run = await harness.db.syncRun.findFirstOrThrow({ where: { source: 'carecloud' }, orderBy: { id: 'desc' } });
    expect(run).toMatchObject({ mode: 'backfill', status: 'succeeded', deleted: 0 });
    // The range is 30 % of the list: it was not read from the top.
    const total = harness.careCloud.store.size;
    expect(run.fetched).toBeLessThan(inside.length + (total - inside.length) / 4);
    expect((await sliceJobs(harness, 'carecloud')).length).toBeGreaterThan(1);
    // Locating the range cost requests of one record each, about 2 × log2(total).
    expect(counts.filter((c) => c === 1).length).toBeLessThanOrEqual(2 * Math.ceil(Math.log2(total)) + 4);
  }, 90_000);
});
