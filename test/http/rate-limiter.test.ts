import { performance } from 'node:perf_hooks';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RateWindow } from '../../src/config.ts';
import { AbortedError, RateLimitedError } from '../../src/errors.ts';
import { createRateLimiter } from '../../src/http/rate-limiter.ts';
import { createTestRedis, type TestRedis } from '../helpers/redis.ts';
import { rejection } from '../helpers/rejection.ts';

/** The largest number of timestamps that fall in any rolling window of `windowMs`. */
function busiestWindow(times: number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let busiest = 0;
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while (sorted[j]! <= sorted[i]! - windowMs) j++;
    busiest = Math.max(busiest, i - j + 1);
  }
  return busiest;
}

describe('createRateLimiter', () => {
  let t: TestRedis;
  beforeEach(() => {
    t = createTestRedis();
  });
  afterEach(async () => {
    await t.cleanup();
  });

  it('never exceeds any rolling window with many acquirers in several connections, and uses close to the limit', async () => {
    const windows: RateWindow[] = [
      { max: 3, windowMs: 200 },
      { max: 6, windowMs: 600 },
    ];
    const marginMs = 25;
    // Four "processes", each with its own connection and limiter object, three concurrent acquirers each.
    const limiters = Array.from({ length: 4 }, () =>
      createRateLimiter({ redis: t.newConnection(), key: `${t.prefix}limit`, windows, dailyBudget: null, marginMs }),
    );
    const wanted = 18;
    const granted: number[] = [];
    let asked = 0;
    await Promise.all(
      limiters.flatMap((limiter) =>
        Array.from({ length: 3 }, async () => {
          while (asked < wanted) {
            asked++;
            await limiter.acquire();
            granted.push(performance.now());
          }
        }),
      ),
    );

    expect(granted).toHaveLength(wanted);
    for (const w of windows) expect(busiestWindow(granted, w.windowMs)).toBeLessThanOrEqual(w.max);

    // Throughput: the binding window (6 per 625 ms) allows 6 × (full windows in the span + 1) requests.
    const span = Math.max(...granted) - Math.min(...granted);
    const allowed = 6 * (Math.floor(span / (600 + marginMs)) + 1);
    expect(granted.length / allowed).toBeGreaterThanOrEqual(0.8);
  });

  it('grants every request a window allows at once, then tells exactly how long until the next slot', async () => {
    const windows = [{ max: 5, windowMs: 10_000 }];
    const key = `${t.prefix}limit`;
    const a = createRateLimiter({ redis: t.newConnection(), key, windows, dailyBudget: null });
    const b = createRateLimiter({ redis: t.newConnection(), key, windows, dailyBudget: null });
    await Promise.all([a, b, a, b, a].map((l) => l.acquire({ maxWaitMs: 0 })));

    const error = await rejection(b.acquire({ maxWaitMs: 1000 }));
    expect(error).toBeInstanceOf(RateLimitedError);
    expect((error as RateLimitedError).retryAfterMs).toBeGreaterThan(9000);
    expect((error as RateLimitedError).retryAfterMs).toBeLessThanOrEqual(10_250);
    expect((error as Error).message).toContain('5 requests per 10000 ms');
    expect((await a.usage()).windows).toEqual([{ max: 5, windowMs: 10_000, used: 5 }]);
  });

  it('refuses with RateLimitedError once the rolling daily budget is spent', async () => {
    const limiter = createRateLimiter({
      redis: t.redis,
      key: `${t.prefix}limit`,
      windows: [{ max: 100, windowMs: 1000 }],
      dailyBudget: 3,
    });
    for (let i = 0; i < 3; i++) await limiter.acquire({ maxWaitMs: 30_000 });

    const error = await rejection(limiter.acquire({ maxWaitMs: 30_000 }));
    expect(error).toBeInstanceOf(RateLimitedError);
    expect((error as Error).message).toContain('daily budget of 3');
    // The oldest of the three frees its slot 24 hours after it was taken.
    expect((error as RateLimitedError).retryAfterMs).toBeGreaterThan(86_400_000 - 60_000);
    expect((error as RateLimitedError).retryAfterMs).toBeLessThanOrEqual(86_400_000);
    const usage = await limiter.usage();
    expect(usage.dailyUsed).toBe(3);
    expect(usage.dailyBudget).toBe(3);
  });

  it('pauses every worker after penalize, and a shorter penalty never shortens a longer one', async () => {
    const key = `${t.prefix}limit`;
    const windows = [{ max: 100, windowMs: 1000 }];
    const hit = createRateLimiter({ redis: t.newConnection(), key, windows, dailyBudget: null });
    const other = createRateLimiter({ redis: t.newConnection(), key, windows, dailyBudget: null });

    await hit.penalize(300);
    const refused = await rejection(other.acquire({ maxWaitMs: 0 }));
    expect(refused).toBeInstanceOf(RateLimitedError);
    expect((refused as RateLimitedError).retryAfterMs).toBeGreaterThan(0);
    expect((refused as RateLimitedError).retryAfterMs).toBeLessThanOrEqual(300);
    expect((refused as Error).message).toContain('429');

    await other.acquire(); // waits the pause out
    expect((await other.usage()).penaltyMs).toBe(0);
    expect((await other.usage()).windows[0]!.used).toBe(1);

    await hit.penalize(5000);
    await hit.penalize(100);
    const stillPaused = await rejection(other.acquire({ maxWaitMs: 0 }));
    expect((stillPaused as RateLimitedError).retryAfterMs).toBeGreaterThan(4000);
  });

  it('stops waiting when the signal aborts, without taking a slot', async () => {
    const limiter = createRateLimiter({
      redis: t.redis,
      key: `${t.prefix}limit`,
      windows: [{ max: 1, windowMs: 10_000 }],
      dailyBudget: null,
    });
    await limiter.acquire();
    const controller = new AbortController();
    const waiting = limiter.acquire({ signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    expect(await rejection(waiting)).toBeInstanceOf(AbortedError);
    expect((await limiter.usage()).windows[0]!.used).toBe(1);
  });
});
