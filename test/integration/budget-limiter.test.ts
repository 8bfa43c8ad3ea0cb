/**
 * The shares of the daily budget, as the Redis limiter enforces them for every worker: reconciliations and backfills
 * never take the incremental reserve, and one the budget refuses is told at once, not kept waiting in line.
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import { RateLimitedError } from '../../src/errors.ts';
import { createRateLimiter } from '../../src/http/rate-limiter.ts';
import { createTestRedis } from '../helpers/redis.ts';
import { rejection } from '../helpers/rejection.ts';

function limiter(options: { dailyBudget: number; incrementalReserve: number; budgetWindowMs?: number }) {
  const t = createTestRedis();
  onTestFinished(() => t.cleanup());
  return createRateLimiter({
    redis: t.redis,
    key: `${t.prefix}limit`,
    windows: [{ max: 1000, windowMs: 1000 }],
    ...options,
  });
}

describe('the shares of the daily budget', () => {
  it('keeps the reserve for incremental requests; a refused bulk request throws at once, for the budget', async () => {
    const shared = limiter({ dailyBudget: 10, incrementalReserve: 4 });
    for (let i = 0; i < 6; i++) await shared.acquire({ share: 'bulk' });
    const started = Date.now();
    const refused = (await rejection(shared.acquire({ share: 'bulk', maxWaitMs: 60_000 }))) as RateLimitedError;
    expect(Date.now() - started).toBeLessThan(1000);
    expect(refused).toBeInstanceOf(RateLimitedError);
    expect(refused.reason).toBe('daily_budget');
    expect(refused.message).toContain('6 for reconciliations and backfills, 4 kept for incremental runs');
    // The reserve is there for the incremental runs, all of it.
    for (let i = 0; i < 4; i++) await shared.acquire({ share: 'incremental', maxWaitMs: 0 });
    expect(((await rejection(shared.acquire({ share: 'incremental', maxWaitMs: 0 }))) as RateLimitedError).reason).toBe(
      'daily_budget',
    );
    expect(await shared.usage()).toMatchObject({ dailyUsed: 10, bulkUsed: 6, dailyBudget: 10 });
    expect(await shared.nextFreeAt('bulk')).not.toBeNull();
  });

  it('lets bulk requests take what incremental ones leave of the whole budget, no more', async () => {
    const shared = limiter({ dailyBudget: 10, incrementalReserve: 4 });
    for (let i = 0; i < 8; i++) await shared.acquire({ share: 'incremental' });
    for (let i = 0; i < 2; i++) await shared.acquire({ share: 'bulk' });
    expect(((await rejection(shared.acquire({ share: 'bulk' }))) as RateLimitedError).reason).toBe('daily_budget');
  });

  it('resumes a refused bulk share when a chunk of it is free again, as the window rolls', async () => {
    const shared = limiter({ dailyBudget: 50, incrementalReserve: 10, budgetWindowMs: 1500 });
    for (let i = 0; i < 40; i++) await shared.acquire({ share: 'bulk' });
    const refused = (await rejection(shared.acquire({ share: 'bulk' }))) as RateLimitedError;
    expect(refused.retryAfterMs).toBeGreaterThan(0);
    expect(refused.retryAfterMs).toBeLessThanOrEqual(1500);
    await new Promise((resolve) => setTimeout(resolve, refused.retryAfterMs + 50));
    // 5 % of the 40 a window (2 requests) are free again when the run is told to come back.
    await shared.acquire({ share: 'bulk', maxWaitMs: 0 });
    await shared.acquire({ share: 'bulk', maxWaitMs: 0 });
  });
});
