import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { ConfigError } from '../../src/errors.ts';
import {
  budgetCost,
  bulkAllowance,
  defaultIncrementalReserve,
  describeCost,
  planBudget,
  requestsFor,
  resumeChunk,
} from '../../src/sync/budget-plan.ts';
import type { SourceLimits } from '../../src/config.ts';
import { formatStatus } from '../../src/status/format-status.ts';
import { sourceStatus } from '../helpers/source-status.ts';

const cin7Limits: SourceLimits = {
  windows: [
    { max: 3, windowMs: 1000 },
    { max: 60, windowMs: 60_000 },
  ],
  dailyBudget: 5000,
  incrementalReserve: 576,
  recordsPerRequest: 250,
};
const now = new Date('2026-12-02T03:00:00.000Z');

function configError(env: Record<string, string>): string {
  try {
    loadConfig({ CIN7_USERNAME: 'user', CIN7_API_KEY: 'key', ...env });
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('the budget plan', () => {
  it('keeps by default enough of Cin7 budget for its 5-minute incremental schedule', () => {
    expect(defaultIncrementalReserve({ every: 300_000 }, 5000)).toBe(576);
    expect(defaultIncrementalReserve({ every: 60_000 }, 5000)).toBe(2500);
    expect(defaultIncrementalReserve({ pattern: '*/10 * * * *' }, 5000)).toBeGreaterThanOrEqual(288);
    expect(defaultIncrementalReserve({ off: true }, 5000)).toBe(0);
    expect(defaultIncrementalReserve({ every: 300_000 }, null)).toBe(0);
    const config = loadConfig({ CIN7_USERNAME: 'user', CIN7_API_KEY: 'key' });
    expect(config.sources.cin7?.limits).toMatchObject({ incrementalReserve: 576, budgetWindowMs: 86_400_000 });
    expect(bulkAllowance(cin7Limits)).toBe(4424);
    expect(resumeChunk(cin7Limits)).toBe(222);
  });

  it('prices a 1M-voucher reconciliation at one day, a 2M one at two', () => {
    const million = budgetCost(requestsFor(1_000_000, cin7Limits), cin7Limits);
    expect(million).toMatchObject({ requests: 4001, budget: 5000, allowance: 4424, windows: 1 });
    expect(describeCost(million)).toBe(
      'about 4,001 requests: 80 % of the daily budget of 5,000 (4,424 a day for reconciliations and backfills): 1 day',
    );
    expect(budgetCost(requestsFor(2_000_000, cin7Limits), cin7Limits).windows).toBe(2);
    expect(describeCost(budgetCost(10, { windows: [], dailyBudget: null }))).toBe(
      'about 10 requests (no daily budget)',
    );
  });

  it('plans pending work: what fits now at the sustained rate, the rest a window of allowance at a time', () => {
    const base = { limits: cin7Limits, usedInWindow: 1000, bulkUsedInWindow: 800, requestsPerSecond: 1, now };
    const small = planBudget({ ...base, pending: [{ mode: 'full', records: 25_000 }] })!;
    expect(small).toMatchObject({ pendingRequests: 101, allowedNow: 3624, allowedPerWindow: 4424, reserve: 576 });
    expect(small.expectedCompletionAt).toBe('2026-12-02T03:01:41.000Z');
    const big = planBudget({ ...base, pending: [{ mode: 'full', records: 2_000_000 }] })!;
    // 8,001 requests: 3,624 now, then 4,377 more: one more window.
    expect(big.expectedCompletionAt).toBe('2026-12-03T03:00:00.000Z');
    expect(planBudget({ ...base, pending: [] })!.expectedCompletionAt).toBeNull();
    expect(planBudget({ ...base, pending: [], limits: { windows: [], dailyBudget: null } })).toBeNull();
  });

  it('refuses a reserve that leaves nothing to reconciliations, and a budget window under a second, naming them', () => {
    expect(configError({ CIN7_INCREMENTAL_RESERVE: '5000' })).toBe(
      'CIN7_INCREMENTAL_RESERVE must be less than CIN7_DAILY_BUDGET, or reconciliations and backfills could never run (got 5000 and 5000)',
    );
    expect(configError({ CIN7_BUDGET_WINDOW: '500ms' })).toContain('CIN7_BUDGET_WINDOW must be at least 1s');
    expect(configError({ CIN7_INCREMENTAL_RESERVE: 'many' })).toContain(
      'CIN7_INCREMENTAL_RESERVE must be a whole number',
    );
    expect(configError({ CARECLOUD_DAILY_BUDGET: '100', CARECLOUD_INCREMENTAL_RESERVE: '100' })).toContain(
      'CARECLOUD_INCREMENTAL_RESERVE must be less than CARECLOUD_DAILY_BUDGET',
    );
  });

  it('shows the plan in the status text', () => {
    const plan = planBudget({
      limits: cin7Limits,
      usedInWindow: 1000,
      bulkUsedInWindow: 800,
      requestsPerSecond: 1,
      now,
      pending: [{ mode: 'full', records: 2_000_000 }],
    });
    const text = formatStatus({
      at: now.toISOString(),
      serviceUp: false,
      processes: [],
      sources: [sourceStatus('cin7', { plan }), sourceStatus('carecloud', { plan: null })],
    });
    expect(text).toContain(
      'budget plan   full needs ~8,001 requests; 3,624 allowed now, 4,424 per 1d (576 kept for incremental runs); done by 2026-12-03 03:00:00Z (in 1d)',
    );
    expect(text.match(/budget plan/g)).toHaveLength(1);
  });
});
