/**
 * `voucher-sync status` shows the budget plan, as an operator runs it: a reconciliation the budget held back, what
 * it still needs, what the budget allows it now and per window, and when it should be done.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { StatusReport } from '../../src/status/types.ts';
import { rejection } from '../helpers/rejection.ts';
import { runCommand } from '../helpers/run-command.ts';
import { createHarness, type Harness } from '../helpers/sync-harness.ts';
import { syncUnlimited } from '../helpers/budget-free-sync.ts';

const BUDGET = 30;
const RESERVE = 12;
const ALLOWANCE = BUDGET - RESERVE;

let h: Harness | undefined;

afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe('the budget plan in status', () => {
  it('status shows the plan of a reconciliation the budget held back: what it needs, what is allowed, when done', async () => {
    h = await createHarness({
      cin7: { count: 240, rateLimits: null },
      env: {
        CIN7_PAGE_SIZE: '10',
        CIN7_SLICE_PAGES: '1000',
        CIN7_RATE_LIMIT: '100/s',
        CIN7_DAILY_BUDGET: String(BUDGET),
        CIN7_INCREMENTAL_RESERVE: String(RESERVE),
        CIN7_BUDGET_WINDOW: '1h',
        CIN7_SCHEDULE: 'off',
        CIN7_RECONCILE_SCHEDULE: 'off',
      },
    });
    await syncUnlimited(h);
    // The reconciliation spends its share and is refused at once, its scan saved.
    const refused = await rejection(h.sync('cin7', 'full'));
    expect((refused as { reason?: string }).reason).toBe('daily_budget');
    const state = await h.db.syncState.findFirstOrThrow({ where: { source: 'cin7' } });
    expect(Object.keys(state.progress as object)).toEqual(['full']);

    const json = await runCommand('src/cli/main.ts', ['status', '--json'], h.env);
    expect(json.code).toBe(0);
    const plan = (JSON.parse(json.stdout) as StatusReport).sources.find((s) => s.source === 'cin7')!.plan!;
    // Its share is spent for the hour: what is left of the scan waits for the window to roll.
    expect(plan).toMatchObject({ allowedNow: 0, allowedPerWindow: ALLOWANCE, reserve: RESERVE, windowSeconds: 3600 });
    expect(plan.scans).toHaveLength(1);
    expect(plan.scans[0]!.mode).toBe('full');
    expect(plan.scans[0]!.records).toBeGreaterThan(0);
    expect(plan.scans[0]!.records).toBeLessThan(240);
    const done = Date.parse(plan.expectedCompletionAt!) - Date.now();
    expect(done).toBeGreaterThan(3_500_000);
    expect(done).toBeLessThanOrEqual(3_600_000);

    const text = await runCommand('src/cli/main.ts', ['status'], h.env);
    expect(text.stdout).toMatch(
      /budget plan +full needs ~\d+ requests; 0 allowed now, 18 per 1h \(12 kept for incremental runs\); done by .+ \(in (59m|1h)/,
    );
  }, 60_000);
});
