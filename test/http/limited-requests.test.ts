import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Secret } from '../../src/config.ts';
import { createFakeCareCloud } from '../../src/fake/carecloud.ts';
import { createWindowPeaks } from '../../src/fake/rate-limiter.ts';
import { createHttpClient } from '../../src/http/create-http-client.ts';
import { createRateLimiter, type RateLimiter } from '../../src/http/rate-limiter.ts';
import { createLogger } from '../../src/logger.ts';
import { createCareCloudClient } from '../../src/sources/carecloud/client.ts';
import type { CareCloudConfig } from '../../src/sources/carecloud/config.ts';
import { createTestRedis, type TestRedis } from '../helpers/redis.ts';
import { captureLogs, startLocalServer, testHttpConfig, type LocalServer } from './local-server.ts';

const WINDOW = { max: 5, windowMs: 1000 };

/**
 * The limiter of a process that cannot send at once what it was granted: its `late`-th slot reaches the HTTP client
 * `delayMs` after Redis granted it, as when a worker's event loop is busy with the page it fetched before (the next
 * page is fetched ahead meanwhile), or a connection to the source takes that long to open.
 */
function lateAfterGrant(limiter: RateLimiter, late: number, delayMs: number): RateLimiter {
  let granted = 0;
  return {
    ...limiter,
    async acquire(options) {
      const slot = await limiter.acquire(options);
      if (++granted === late) await sleep(delayMs);
      return slot;
    },
  };
}

describe('the requests the shared limiter lets through', () => {
  let t: TestRedis;
  let server: LocalServer | undefined;

  beforeEach(() => {
    t = createTestRedis();
  });
  afterEach(async () => {
    await server?.close();
    server = undefined;
    await t.cleanup();
  });

  it('gave a slot to every request the source received: logins, retries and the login again after a 401', async () => {
    const fake = createFakeCareCloud({ count: 20, rateLimits: null });
    const baseUrl = await fake.start();
    try {
      const limiter = createRateLimiter({
        redis: t.redis,
        key: `${t.prefix}limit`,
        windows: [{ max: 1000, windowMs: 60_000 }],
        dailyBudget: null,
      });
      const config = {
        baseUrl,
        login: fake.credentials.login,
        password: new Secret(fake.credentials.password),
        appId: new Secret(fake.credentials.appId),
        timezone: fake.timezone,
      } as CareCloudConfig;
      const client = createCareCloudClient(config, {
        http: testHttpConfig(),
        limiter,
        logger: createLogger('warn', captureLogs()),
        backoffBaseMs: 10,
      });
      const page = { count: 5, offset: 0 };

      fake.faults.inject({ kind: 'status', status: 503 }, { on: 'login' });
      await client.listVouchers(page); // login 503, login, list
      fake.faults.inject({ kind: 'status', status: 503 }, { on: 'list' });
      await client.listVouchers(page); // list 503, list
      fake.store.expireTokens();
      await client.listVouchers(page); // list 401, login, list

      expect(fake.stats.byStatus).toEqual({ 200: 5, 401: 1, 503: 2 });
      expect((await limiter.usage()).windows[0]!.used).toBe(fake.stats.requests);
    } finally {
      await fake.stop();
    }
  });

  it('keeps the server’s window when a request leaves well after its slot was granted', async () => {
    const peaks = createWindowPeaks([WINDOW]);
    server = await startLocalServer(() => {
      peaks.observe('account', performance.now());
      return { json: { ok: true } };
    });
    const limiter = createRateLimiter({
      redis: t.redis,
      key: `${t.prefix}limit`,
      windows: [WINDOW],
      dailyBudget: null,
    });
    // The sixth slot is the first one that had to wait for the window; its request leaves 800 ms after the grant,
    // more than the limiter's margin (250 ms) and less than the window.
    const http = createHttpClient({
      source: 'test',
      baseUrl: server.url,
      http: testHttpConfig({ maxInlineWaitMs: 10_000 }),
      limiter: lateAfterGrant(limiter, 6, 800),
      logger: createLogger('warn', captureLogs()),
    });

    const answers = await Promise.all(Array.from({ length: 15 }, (_, i) => http.get(`page/${i}`)));

    expect(answers.map((a) => a.body)).toEqual(Array.from({ length: 15 }, () => ({ ok: true })));
    expect(server.requests).toHaveLength(15);
    expect(peaks.peaks()[0]!.peak).toBeLessThanOrEqual(WINDOW.max);
  }, 20_000);
});
