import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createRateLimiter } from '../../src/http/rate-limiter.ts';
import { createTestRedis, type TestRedis } from '../helpers/redis.ts';

describe('how long acquire waits for a slot', () => {
  let t: TestRedis;
  beforeEach(() => {
    t = createTestRedis();
  });
  afterEach(async () => {
    await t.cleanup();
  });

  it('keeps waiting under contention while each wait is shorter than maxWaitMs, however many it takes', async () => {
    // One request per 200 ms: five at once are granted one after another, each wait at most 200 ms, 800 ms in all.
    const limiter = createRateLimiter({
      redis: t.redis,
      key: `${t.prefix}limit`,
      windows: [{ max: 1, windowMs: 200 }],
      dailyBudget: null,
      marginMs: 0,
    });
    const granted = await Promise.allSettled(Array.from({ length: 5 }, () => limiter.acquire({ maxWaitMs: 300 })));
    expect(granted.map((g) => g.status)).toEqual(Array(5).fill('fulfilled'));
  });
});
