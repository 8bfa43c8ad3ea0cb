import { Queue } from 'bullmq';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runOnce } from '../../jobs/run-once.ts';
import { startService } from '../../jobs/service.ts';
import type { Cin7Voucher } from '../../src/fake/cin7-data.ts';
import { parseIsoDateTime } from '../../src/sources/parse.ts';
import { createHarness, REDIS_URL, type Harness } from '../helpers/sync-harness.ts';

let h: Harness;
afterEach(async () => {
  await h.close();
});

const truth = (): Cin7Voucher[] => h.cin7.store.all();
const listRequests = () => h.cin7.stats.byEndpoint['GET /v1/Voucher'] ?? 0;

async function expectTableEqualsTruth() {
  const rows = await h.vouchers('cin7');
  const live = rows.filter((r) => !r.isDeleted);
  const expected = truth();
  expect(live.length).toBe(expected.length);
  const byCode = new Map(live.map((r) => [r.sourceId, r]));
  for (const v of expected) {
    const row = byCode.get(v.code);
    expect(row, `voucher ${v.code} missing`).toBeDefined();
    expect(row!.raw).toEqual(v);
    expect(row!.status).toBe(v.status === 'Inactive' ? 'inactive' : 'active');
    expect(row!.redeemedAmount?.toString() ?? null).toBe(
      v.redeemedAmount === null || v.redeemedAmount === undefined ? null : String(v.redeemedAmount),
    );
    expect(row!.sourceCreatedAt?.toISOString()).toBe(parseIsoDateTime(v.createdDate, 'UTC'));
  }
}

/**
 * While a reconciliation reads, deletes a voucher before every list request but the first. Nothing still at
 * the source may be marked deleted or be missing, and the next reconciliation marks what vanished. Returns
 * the number of list requests.
 */
async function deleteWhileReconciling(pick: (all: Cin7Voucher[], n: number) => Cin7Voucher): Promise<number> {
  let n = 0;
  const remove = h.cin7.store.onListRequest(() => {
    if (n++ > 0) h.cin7.store.hardDelete(pick(truth(), n).code);
  });
  await h.sync('cin7', 'full');
  remove();
  const present = new Set(truth().map((v) => v.code));
  const wronglyDeleted = (await h.db.voucher.findMany({ where: { source: 'cin7', isDeleted: true } })).filter((r) =>
    present.has(r.sourceId),
  );
  expect(wronglyDeleted).toEqual([]);
  expect((await h.vouchers('cin7')).filter((r) => present.has(r.sourceId))).toHaveLength(present.size);
  await h.sync('cin7', 'full');
  await expectTableEqualsTruth();
  expect(await h.db.voucher.count({ where: { source: 'cin7', isDeleted: true } })).toBe(n - 1);
  return n;
}

describe('Cin7 sync', () => {
  beforeEach(async () => {
    h = await createHarness({ env: { CIN7_PAGE_SIZE: '100' } });
  });

  it('lands exactly the fake vouchers, then an idle run makes one request and writes nothing', async () => {
    const first = await h.sync('cin7');
    expect(first.counters.inserted).toBe(truth().length);
    await expectTableEqualsTruth();
    h.cin7.stats.reset();
    const second = await h.sync('cin7');
    expect(listRequests()).toBe(1);
    expect(second.counters).toMatchObject({ inserted: 0, updated: 0 });
  });

  it('picks up new vouchers incrementally, by CreatedDate, and ignores redemptions until reconciliation', async () => {
    await h.sync('cin7');
    const fresh = h.cin7.store.insert();
    const [redeemed] = truth();
    h.cin7.store.redeem(redeemed!.code, 1);
    const incremental = await h.sync('cin7');
    expect(incremental.counters.inserted).toBe(1);
    expect(await h.db.voucher.count({ where: { sourceId: fresh.code } })).toBe(1);
    const full = await h.sync('cin7', 'full');
    expect(full.counters.updated).toBe(1);
    await expectTableEqualsTruth();
  });

  it('reconciliation picks up a redemption and marks a vanished voucher deleted once confirmed gone', async () => {
    await h.sync('cin7');
    const [a, b] = truth();
    h.cin7.store.redeem(a!.code, Number(a!.amount));
    h.cin7.store.hardDelete(b!.code);
    const run = await h.sync('cin7', 'full');
    expect(run.counters).toMatchObject({ updated: 1, deleted: 1 });
    expect(await h.db.voucher.findFirstOrThrow({ where: { source: 'cin7', sourceId: a!.code } })).toMatchObject({
      status: 'inactive',
    });
    expect(await h.db.voucher.findFirstOrThrow({ where: { source: 'cin7', sourceId: b!.code } })).toMatchObject({
      status: 'deleted',
      isDeleted: true,
    });
    await expectTableEqualsTruth();
  });

  it('does not delete a voucher that rows shifting during the scan hid from it', async () => {
    await h.sync('cin7');
    // Deleting a voucher already read pulls every later one up by one: with page numbers, the first voucher
    // of each next page slides onto the page we already read and is not seen by this scan.
    expect(await deleteWhileReconciling((all) => all[0]!)).toBeGreaterThan(3);
  });

  it('rejects malformed vouchers with their reasons and stores their page-mates', async () => {
    await h.sync('cin7');
    h.cin7.store.insertMalformed('comma-number');
    h.cin7.store.insertMalformed('missing-code');
    const good = h.cin7.store.insert();
    const run = await h.sync('cin7');
    expect(run.counters.rejected).toBe(2);
    expect(await h.db.voucher.count({ where: { sourceId: good.code } })).toBe(1);
    const reasons = (await h.db.rejectedRecord.findMany()).map((r) => r.reason);
    expect(reasons).toEqual(
      expect.arrayContaining([
        expect.stringContaining('amount: expected a number, got the string "12,50"'),
        expect.stringContaining('code: is missing'),
      ]),
    );
  });

  it('rides out 429s without Retry-After, as Cin7 sends them', async () => {
    h.cin7.faults.inject({ kind: 'status', status: 429 }, { on: 'list', times: 2 });
    const run = await h.sync('cin7');
    expect(run.counters).toMatchObject({ inserted: truth().length, rateLimited: 2 });
  });

  it('builds where clauses only from dates it formatted itself', async () => {
    await h.sync('cin7');
    await h.sync('cin7');
    const state = await h.db.syncState.findFirstOrThrow({ where: { source: 'cin7' } });
    expect(state.watermark).not.toBeNull();
    const log = h.logLines.join('');
    expect(log).not.toContain(h.cin7.credentials.apiKey);
    expect(log).not.toContain('@'); // customer emails never logged
  });
});

describe('Cin7 incremental sync inside one CreatedDate second holding more than a page', () => {
  // Found by the chaos suite (seed 17): paged by page number inside such a second, vouchers that vanish
  // from a page already read shift unread ones past the scan, and the next incremental run starts after
  // that second, so they waited for the reconciliation.
  it('reads every Cin7 voucher of a second holding more than a page, even when some vanish while it pages', async () => {
    let now = Date.parse('2026-03-02T10:00:00Z');
    h = await createHarness({
      cin7: { seed: 4, count: 30, now: () => now, anchor: now - 86_400_000 },
      env: { CIN7_PAGE_SIZE: '10', CIN7_LOOKBACK: '1s' },
    });
    const { store } = h.cin7;
    await h.sync('cin7', 'incremental');
    now += 60_000;
    const first = store.insert();
    const group = [first, ...Array.from({ length: 24 }, () => store.insert({ createdDate: first.createdDate }))];
    now += 5_000;
    const later = store.insert();
    let removed = false;
    const stopHook = store.onListRequest(({ query }) => {
      // Just before the scan asks for the second page of that second: five vouchers of the first vanish.
      if (!removed && query.get('page') === '2' && query.has('where')) {
        for (const voucher of group.slice(0, 5)) store.hardDelete(voucher.code);
        removed = true;
      }
    });
    await h.sync('cin7', 'incremental');
    stopHook();
    await h.sync('cin7', 'incremental');
    expect(removed).toBe(true);
    const stored = new Set((await h.vouchers('cin7')).map((v) => v.sourceId));
    expect([...group.slice(5), later].map((v) => v.code).filter((code) => !stored.has(code))).toEqual([]);
  });
});

describe('Cin7 scans split into CreatedDate slices', () => {
  // Windows of about 2 pages of 25: some twelve slices over 600 vouchers, one of them holding the fake's bulk
  // import (90 vouchers sharing one CreatedDate, more than a page).
  const SLICED = { CIN7_PAGE_SIZE: '25', CIN7_SLICE_PAGES: '2' };
  const slicesPlanned = () =>
    h.logLines
      .map((line) => JSON.parse(line) as { msg?: string; slices?: number })
      .filter((line) => line.msg === 'reading the scan in slices')
      .map((line) => line.slices);

  it('a backfill and a reconciliation read in slices store exactly the vouchers', async () => {
    h = await createHarness({ env: SLICED });
    const backfill = await h.sync('cin7');
    expect(backfill.counters.inserted).toBe(truth().length);
    await expectTableEqualsTruth();
    const full = await h.sync('cin7', 'full');
    expect(full.counters).toMatchObject({ inserted: 0, updated: 0, deleted: 0 });
    await expectTableEqualsTruth();
    const planned = slicesPlanned();
    expect(planned).toHaveLength(2);
    for (const slices of planned) expect(slices).toBeGreaterThan(8);
    // The next incremental run starts where the sliced backfill left the watermark: one request.
    h.cin7.stats.reset();
    expect((await h.sync('cin7')).counters.inserted).toBe(0);
    expect(listRequests()).toBe(1);
  });

  it('a sliced reconciliation picks up a redemption, a voucher created after its plan, and marks a hard-deleted one deleted', async () => {
    h = await createHarness({ env: SLICED });
    await h.sync('cin7');
    const [redeemed, gone] = truth();
    h.cin7.store.redeem(redeemed!.code, Number(redeemed!.amount));
    h.cin7.store.hardDelete(gone!.code);
    let fresh: Cin7Voucher | undefined;
    // The plan asks for one row at a time; once the slices read pages, a voucher is created.
    const stop = h.cin7.store.onListRequest(({ query }) => {
      if (fresh === undefined && query.get('rows') !== '1') fresh = h.cin7.store.insert();
    });
    const run = await h.sync('cin7', 'full');
    stop();
    expect(slicesPlanned().at(-1)).toBeGreaterThan(8);
    expect(run.counters).toMatchObject({ inserted: 1, updated: 1, deleted: 1 });
    expect(await h.db.voucher.findFirstOrThrow({ where: { source: 'cin7', sourceId: redeemed!.code } })).toMatchObject({
      status: 'inactive',
    });
    expect(await h.db.voucher.findFirstOrThrow({ where: { source: 'cin7', sourceId: gone!.code } })).toMatchObject({
      status: 'deleted',
      isDeleted: true,
    });
    expect(await h.db.voucher.count({ where: { source: 'cin7', sourceId: fresh!.code } })).toBe(1);
    await expectTableEqualsTruth();
    expect(await h.db.scanSeen.count()).toBe(0);
  });

  it('does not delete vouchers that deletions during a sliced reconciliation hid from it', async () => {
    h = await createHarness({ env: SLICED });
    await h.sync('cin7');
    // Vouchers vanish all over CreatedDate, inside every slice and inside the bulk import's second.
    expect(await deleteWhileReconciling((all, n) => all[(n * 37) % all.length]!)).toBeGreaterThan(20);
  });

  it('does not take a page the server cut short for the end of a slice', async () => {
    // No confirmation lookups: what a slice leaves unread stays stale, as beyond CIN7_CONFIRM_MAX.
    h = await createHarness({ env: { ...SLICED, CIN7_CONFIRM_MAX: '0' } });
    await h.sync('cin7');
    for (const voucher of truth().filter((v) => v.status === 'Active')) h.cin7.store.redeem(voucher.code, 0.5);
    let cut = false;
    const stop = h.cin7.store.onListRequest(({ query }) => {
      if (cut || query.get('rows') === '1') return;
      // Once the plan is made: six pages in a row come ten vouchers short.
      h.cin7.faults.inject({ kind: 'undersize', by: 10 }, { times: 6 });
      cut = true;
    });
    const run = await h.sync('cin7', 'full');
    stop();
    expect(cut).toBe(true);
    expect(h.cin7.faults.pending).toBe(0);
    expect(run.counters.deleted).toBe(0);
    await expectTableEqualsTruth();
  });

  it('counts every request of a sliced scan against the rate limit and the daily budget', async () => {
    h = await createHarness({
      cin7: { count: 300, rateLimits: [{ max: 20, windowMs: 1000 }] },
      env: { ...SLICED, CIN7_RATE_LIMIT: '20/s', CIN7_DAILY_BUDGET: '5000' },
    });
    await h.sync('cin7');
    await h.sync('cin7', 'full');
    expect(slicesPlanned()).toHaveLength(2);
    // Every request the fake received took a slot of the shared limiter first: plan, slices and lookups.
    const sent = listRequests();
    const { dailyUsed } = await h.runtime('cin7').limiter.usage();
    expect(dailyUsed).toBe(sent);
    const runs = await h.db.syncRun.findMany({ where: { source: 'cin7' } });
    expect(runs.map((r) => r.status)).toEqual(['succeeded', 'succeeded']);
    // …and the run history counts each of them once, the pages fetched ahead included.
    expect(runs.reduce((sum, r) => sum + r.apiCalls, 0)).toBe(sent);
    expect(h.cin7.stats.rateLimited).toBe(0);
    expect(h.cin7.stats.maxInWindow[0]!.peak).toBeLessThanOrEqual(20);
  });

  it('stops a sliced scan when the daily budget is spent, without a request past it', async () => {
    h = await createHarness({ env: { ...SLICED, CIN7_DAILY_BUDGET: '15' } });
    await expect(h.sync('cin7')).rejects.toThrow(/daily budget of 15/);
    expect(listRequests()).toBeLessThanOrEqual(15);
    // Waiting for the budget, not failed nor interrupted: the row says why and until when.
    expect(await h.db.syncRun.findFirstOrThrow({ where: { source: 'cin7' } })).toMatchObject({
      status: 'waiting',
      waitingReason: 'daily_budget',
      waitingUntil: expect.any(Date),
      finishedAt: null,
    });
    expect(await h.db.voucher.count({ where: { source: 'cin7' } })).toBeGreaterThan(0);
  });

  it('puts the slices of a reconciliation on the cin7-slices queue that every worker serves', async () => {
    const noCareCloud = {
      CARECLOUD_BASE_URL: '',
      CARECLOUD_LOGIN: '',
      CARECLOUD_PASSWORD: '',
      CARECLOUD_APP_ID: '',
      CARECLOUD_TIMEZONE: '',
    };
    h = await createHarness({ env: { ...SLICED, ...noCareCloud } });
    const service = await startService(h.config, h.logger, { schedulers: false });
    const slices = new Queue('cin7-slices', { connection: h.redis, prefix: h.prefix });
    try {
      expect((await runOnce(service, REDIS_URL, h.prefix, 'incremental', 'cli')).map((o) => o.ok)).toEqual([true]);
      const [redeemed] = truth();
      h.cin7.store.redeem(redeemed!.code, 1);
      const [outcome] = await runOnce(service, REDIS_URL, h.prefix, 'full', 'cli');
      expect(outcome?.ok && outcome.result.counters).toMatchObject({ updated: 1, deleted: 0 });
      await expectTableEqualsTruth();
      const planned = slicesPlanned();
      expect(await slices.getCompletedCount()).toBe(planned[0]! + planned[1]!);
    } finally {
      await slices.close();
      await service.stop();
    }
  });
});
