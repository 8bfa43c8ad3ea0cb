import { describe, expect, it, onTestFinished } from 'vitest';
import type { RateWindow } from '../../src/config.ts';
import { RateLimitedError } from '../../src/errors.ts';
import { createRateLimiter, type RateLimiter } from '../../src/http/rate-limiter.ts';
import { createTestRedis, type TestRedis } from '../helpers/redis.ts';
import { rejection } from '../helpers/rejection.ts';

async function redisNow(t: TestRedis): Promise<number> {
  const [seconds, micros] = await t.redis.time();
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}

/**
 * A limiter of its own Redis keys that has granted `requests` requests; `before` is Redis' time before the first,
 * `t` the connection (closed, and the keys deleted, when the test ends).
 */
async function spent(
  requests: number,
  options: { windows: RateWindow[]; dailyBudget: number | null; marginMs?: number },
): Promise<{ limiter: RateLimiter; t: TestRedis; before: number }> {
  const t = createTestRedis();
  onTestFinished(() => t.cleanup());
  const limiter = createRateLimiter({ redis: t.redis, key: `${t.prefix}limit`, ...options });
  const before = await redisNow(t);
  for (let i = 0; i < requests; i++) await limiter.acquire({ maxWaitMs: 0 });
  return { limiter, t, before };
}

describe('rate limiter nextFreeAt', () => {
  it('is null while every window admits a request, and takes no slot', async () => {
    const { limiter } = await spent(1, { windows: [{ max: 2, windowMs: 10_000 }], dailyBudget: 5 });
    expect(await limiter.nextFreeAt()).toBeNull();
    expect(await limiter.nextFreeAt()).toBeNull();
    expect((await limiter.usage()).windows[0]!.used).toBe(1);
  });

  it('says when a full window frees a slot, its margin included, as acquire would wait', async () => {
    const { limiter, t, before } = await spent(2, {
      windows: [{ max: 2, windowMs: 10_000 }],
      dailyBudget: null,
      marginMs: 2000,
    });
    const at = (await limiter.nextFreeAt())!.getTime();
    // The first slot leaves the window 10 s and the 2 s margin after it was taken.
    expect(at).toBeGreaterThanOrEqual(before + 12_000);
    expect(at).toBeLessThanOrEqual((await redisNow(t)) + 12_000);
    // acquire, refused, waits for the same moment: its wait, counted from its own reading of the clock, ends there.
    const error = (await rejection(limiter.acquire({ maxWaitMs: 0 }))) as RateLimitedError;
    expect(error).toBeInstanceOf(RateLimitedError);
    expect(at - error.retryAfterMs).toBeGreaterThanOrEqual(before);
    expect(at - error.retryAfterMs).toBeLessThanOrEqual(await redisNow(t));
  });

  it('says when a spent daily budget lets the next request through: a day after its oldest request', async () => {
    const { limiter, t, before } = await spent(2, { windows: [{ max: 100, windowMs: 1000 }], dailyBudget: 2 });
    const at = (await limiter.nextFreeAt())!.getTime();
    expect(at).toBeGreaterThanOrEqual(before + 86_400_000);
    expect(at).toBeLessThanOrEqual((await redisNow(t)) + 86_400_000);
    expect(((await rejection(limiter.acquire({ maxWaitMs: 0 }))) as RateLimitedError).reason).toBe('daily_budget');
  });
});
