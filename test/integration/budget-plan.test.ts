/**
 * The budget plan, simulated with time-scaled limits: a "day" of budget lasts 15 s (CIN7_BUDGET_WINDOW), the
 * schedules are durations, and a Cin7 reconciliation needs more than two windows' worth of what the budget leaves
 * it. Through the real service (queues, schedulers, slice workers, the Redis limiter), the reconciliation must spread
 * itself over three windows and end with the table equal to the fake's ground truth, while the incremental runs keep
 * the data fresh (not stale, as `status` measures it) in every window, and the reconciliation's schedule coming
 * round again starts no second copy.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startService, type Service } from '../../jobs/service.ts';
import { parseIsoDateTime } from '../../src/sources/parse.ts';
import { readStatus } from '../../src/status/read-status.ts';
import { syncUnlimited } from '../helpers/budget-free-sync.ts';
import { createHarness, type Harness } from '../helpers/sync-harness.ts';

const WINDOW_MS = 15_000;
const BUDGET = 30;
const RESERVE = 12;
const ALLOWANCE = BUDGET - RESERVE;
const INCREMENTAL_EVERY_MS = 2_000;
const STALE_MARGIN_MS = 4_000;

let h: Harness | undefined;
let service: Service | undefined;

afterEach(async () => {
  await service?.stop();
  service = undefined;
  await h?.close();
  h = undefined;
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Differences between the table and the fake's vouchers (missing, stale, not marked deleted, phantom). */
async function mismatches(harness: Harness, hardDeleted: string[]): Promise<string[]> {
  const rows = await harness.vouchers('cin7');
  const byCode = new Map(rows.map((r) => [r.sourceId, r]));
  const found: string[] = [];
  const truth = harness.cin7.store.all();
  for (const v of truth) {
    const row = byCode.get(v.code);
    if (!row || row.isDeleted) found.push(`missing ${v.code}`);
    else if (
      row.status !== (v.status === 'Inactive' ? 'inactive' : 'active') ||
      row.redeemedAmount?.toString() !== String(v.redeemedAmount) ||
      row.sourceCreatedAt?.toISOString() !== parseIsoDateTime(v.createdDate, 'UTC')
    )
      found.push(`stale ${v.code}`);
  }
  for (const code of hardDeleted) if (!byCode.get(code)?.isDeleted) found.push(`not marked deleted ${code}`);
  const live = rows.filter((r) => !r.isDeleted).length;
  if (live !== truth.length) found.push(`${live} live rows for ${truth.length} vouchers`);
  return found;
}

describe('the budget plan, with a 15-second budget window', () => {
  it('spreads a reconciliation over three windows to 0 mismatches while incremental runs stay fresh', async () => {
    h = await createHarness({
      cin7: { count: 240, rateLimits: null },
      env: {
        CIN7_PAGE_SIZE: '10',
        CIN7_SLICE_PAGES: '6',
        CIN7_RATE_LIMIT: '10/s',
        CIN7_DAILY_BUDGET: String(BUDGET),
        CIN7_INCREMENTAL_RESERVE: String(RESERVE),
        CIN7_BUDGET_WINDOW: `${WINDOW_MS}ms`,
        CIN7_SCHEDULE: `${INCREMENTAL_EVERY_MS}ms`,
        CIN7_RECONCILE_SCHEDULE: '12s',
        CIN7_CONFIRM_MAX: '50',
        // A short lookback keeps each incremental run to one page, as in production (5 min of changes, 250 a page).
        CIN7_LOOKBACK: '3s',
        ALERT_STALE_AFTER: `${STALE_MARGIN_MS}ms`,
        CARECLOUD_SCHEDULE: 'off',
        CARECLOUD_RECONCILE_SCHEDULE: 'off',
      },
    });
    const harness = h;
    // The first backfill, before the simulation and outside its budget.
    await syncUnlimited(harness);
    // What only a reconciliation sees: redemptions (Cin7 stamps no date on them) and hard deletions.
    const store = harness.cin7.store;
    const all = store.all();
    for (const v of all.slice(0, 6)) store.redeem(v.code, Number(v.amount));
    const hardDeleted = all.slice(10, 13).map((v) => v.code);
    for (const code of hardDeleted) store.hardDelete(code);
    harness.cin7.stats.reset();

    const t0 = Date.now();
    service = await startService(harness.config, harness.logger, { only: ['cin7'] });
    const windowOf = (at: number) => Math.floor((at - t0) / WINDOW_MS);
    const worst = new Map<number, { freshness: number; latency: number }>();
    const note = (at: number, key: 'freshness' | 'latency', ms: number) => {
      const entry = worst.get(windowOf(at)) ?? { freshness: 0, latency: 0 };
      entry[key] = Math.max(entry[key], ms);
      worst.set(windowOf(at), entry);
    };
    // Requests the fake received in each window: at most the budget, in these as in any 15 seconds.
    const requestsIn: number[] = [];
    const countRequests = (at: number) => {
      const w = windowOf(at);
      const before = requestsIn.slice(0, w).reduce((a, b) => a + b, 0);
      requestsIn[w] = harness.cin7.stats.requests - before;
    };
    const inserted: { code: string; at: number }[] = [];
    let plan: Awaited<ReturnType<typeof readStatus>>['sources'][number]['plan'] = null;
    let lastInsert = 0;
    let full: { status: string; startedAt: Date; finishedAt: Date | null } | null = null;
    const deadline = t0 + 75_000;
    while (Date.now() < deadline) {
      await sleep(250);
      const now = Date.now();
      countRequests(now);
      // A new voucher every second: how long until an incremental run has stored it is the freshness users see.
      if (now - lastInsert >= 1000) {
        inserted.push({ code: store.insert().code, at: now });
        lastInsert = now;
      }
      const stored = await harness.db.voucher.findMany({
        where: { source: 'cin7', sourceId: { in: inserted.map((i) => i.code) } },
        select: { sourceId: true, firstSeenAt: true },
      });
      for (const row of stored) {
        const i = inserted.findIndex((x) => x.code === row.sourceId);
        note(inserted[i]!.at, 'latency', row.firstSeenAt.getTime() - inserted[i]!.at);
        inserted.splice(i, 1);
      }
      for (const i of inserted) note(i.at, 'latency', now - i.at);
      // Freshness as `status` measures it: since the last successful incremental run began.
      const last = await harness.db.syncRun.findFirst({
        where: { source: 'cin7', mode: 'incremental', status: 'succeeded', startedAt: { gte: new Date(t0) } },
        orderBy: { startedAt: 'desc' },
      });
      note(now, 'freshness', now - (last?.startedAt.getTime() ?? t0));
      if (plan === null || plan.scans.length === 0) {
        const status = await readStatus({ db: harness.db, redis: harness.redis, config: harness.config });
        plan = status.sources.find((s) => s.source === 'cin7')!.plan;
      }
      full = await harness.db.syncRun.findFirst({
        where: { source: 'cin7', mode: 'full', status: 'succeeded' },
        orderBy: { id: 'asc' },
      });
      if (full) break;
    }
    const finishedAt = Date.now();
    countRequests(finishedAt);
    await service.stop();
    service = undefined;

    expect(full, 'the reconciliation finished within 75 s').not.toBeNull();
    const fullRows = await harness.db.syncRun.findMany({
      where: { source: 'cin7', mode: 'full' },
      orderBy: { id: 'asc' },
    });
    const requests = fullRows.reduce((total, r) => total + r.apiCalls, 0);
    const windows = windowOf(full!.finishedAt!.getTime()) + 1;
    const figures = {
      windows,
      reconciliationRequests: requests,
      reconciliationRows: fullRows.length,
      allowancePerWindow: ALLOWANCE,
      requestsPerWindow: requestsIn,
      worstPerWindow: [...worst.entries()].map(([w, v]) => ({
        window: w,
        freshnessMs: v.freshness,
        latencyMs: v.latency,
      })),
      plan,
      seconds: (finishedAt - t0) / 1000,
    };
    console.log(`budget simulation: ${JSON.stringify(figures)}`);

    // One logical run, continued by each row after a wait for the budget: no second copy of the reconciliation.
    expect(new Set(fullRows.map((r) => String(r.logicalRunId ?? r.id))).size).toBe(1);
    expect(requests).toBeGreaterThan(2 * ALLOWANCE);
    expect(windows).toBe(3);
    // The schedule came round (every 12 s) while it was pending: those jobs were skipped, not run.
    expect(harness.logLines.some((line) => line.includes('skipped: the same scan is still pending'))).toBe(true);
    const freshnessLimit = INCREMENTAL_EVERY_MS + STALE_MARGIN_MS;
    for (const [, w] of worst) expect(w.freshness).toBeLessThanOrEqual(freshnessLimit);
    // Incremental requests came out of the budget as well: never more than the budget in a window.
    for (const n of requestsIn) expect(n ?? 0).toBeLessThanOrEqual(BUDGET);
    expect(plan?.scans.some((s) => s.mode === 'full' && s.requests > 0)).toBe(true);
    expect(plan?.expectedCompletionAt).not.toBeNull();
    // Let the last incremental run store the vouchers inserted at the end, then compare with the ground truth.
    await syncUnlimited(harness);
    expect(await mismatches(harness, hardDeleted)).toEqual([]);
  }, 90_000);
});
