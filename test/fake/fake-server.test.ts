import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createFakeCareCloud, type FakeCareCloud } from '../../src/fake/carecloud.ts';
import { createFakeCin7, type FakeCin7 } from '../../src/fake/cin7.ts';
import { careCloudClient, careCloudLogin, cin7Client } from './fake-clients.ts';

const started: Array<FakeCareCloud | FakeCin7> = [];
async function start<T extends FakeCareCloud | FakeCin7>(fake: T): Promise<T> {
  started.push(fake);
  await fake.start();
  return fake;
}
afterEach(async () => {
  await Promise.all(started.splice(0).map((fake) => fake.stop()));
});

describe('rate limits', () => {
  it('CareCloud answers 429 with Retry-After once a window is full, and counts every violation', async () => {
    const fake = await start(createFakeCareCloud({ count: 20, rateLimits: [{ max: 3, windowMs: 60_000 }] }));
    const client = await careCloudClient(fake);
    const answers = await Promise.all([1, 2, 3, 4].map(() => client.get('/vouchers')));
    expect(answers.map((a) => a.status).sort()).toEqual([200, 200, 429, 429]);
    const limited = answers.find((a) => a.status === 429)!;
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(Number(limited.headers.get('retry-after'))).toBeLessThanOrEqual(60);
    expect(fake.stats).toMatchObject({
      requests: 5,
      rateLimited: 2,
      limitViolations: 2,
      byStatus: { 200: 3, 429: 2 },
      byEndpoint: { 'POST /users/actions/login': 1, 'GET /vouchers': 4 },
    });
    expect(fake.stats.maxInWindow).toEqual([{ windowMs: 60_000, limit: 3, peak: 5 }]);

    fake.stats.reset();
    expect(fake.stats).toMatchObject({ requests: 0, rateLimited: 0, limitViolations: 0, byStatus: {} });
    expect((await client.get('/vouchers')).status).toBe(429); // the window itself is not reset
    expect(fake.stats.limitViolations).toBe(1);
  });

  it('admits again after the wait it announced, and a client that spaces its calls sees no 429', async () => {
    const fake = await start(createFakeCareCloud({ count: 20, rateLimits: [{ max: 1, windowMs: 100 }] }));
    await careCloudLogin(fake);
    const refused = await careCloudLogin(fake);
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toBe('1');
    await sleep(1000);
    fake.stats.reset();
    for (let i = 0; i < 4; i++) {
      expect((await careCloudLogin(fake)).status).toBe(200);
      await sleep(150);
    }
    expect(fake.stats.limitViolations).toBe(0);
    expect(fake.stats.maxInWindow[0]!.peak).toBe(1);
  });

  it('Cin7 enforces 3/s, 60/min and 5000/day per account by default, without Retry-After', async () => {
    const fake = await start(createFakeCin7({ count: 20 }));
    const client = cin7Client(fake);
    const answers = await Promise.all([1, 2, 3, 4, 5].map(() => client.get()));
    expect(answers.map((a) => a.status).sort()).toEqual([200, 200, 200, 429, 429]);
    expect(answers.every((a) => a.headers.get('retry-after') === null)).toBe(true);
    expect(fake.stats.maxInWindow.map(({ windowMs, limit }) => [windowMs, limit])).toEqual([
      [1000, 3],
      [60_000, 60],
      [86_400_000, 5000],
    ]);
    expect(fake.stats.limitViolations).toBe(2);
    // Another account has its own budget (and, being unknown, its own 401).
    expect((await cin7Client(fake, { username: 'someone-else', apiKey: 'x' }).get()).status).toBe(401);
  });

  it('Cin7 sends Retry-After when asked to', async () => {
    const fake = await start(createFakeCin7({ count: 20, retryAfter: true, rateLimits: [{ max: 1, windowMs: 5000 }] }));
    const client = cin7Client(fake);
    await client.get();
    const refused = await client.get();
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  });
});

describe('faults', () => {
  it('serves an error status with Retry-After instead of the next request, then recovers', async () => {
    const fake = await start(createFakeCareCloud({ count: 20, rateLimits: null }));
    const client = await careCloudClient(fake);
    fake.faults.inject({ kind: 'status', status: 503, retryAfter: 7 });
    const failed = await client.get('/vouchers');
    expect(failed.status).toBe(503);
    expect(failed.headers.get('retry-after')).toBe('7');
    expect(failed.json.error).toMatchObject({ title: expect.any(String), exception: expect.any(String) });
    expect((await client.get('/vouchers')).status).toBe(200);
    expect(fake.stats.rateLimited).toBe(0);
  });

  it('waits for a matching request and repeats `times` times', async () => {
    const fake = await start(createFakeCareCloud({ count: 20, rateLimits: null }));
    const client = await careCloudClient(fake);
    const [voucher] = fake.store.all();
    fake.faults.inject({ kind: 'status', status: 500 }, { times: 2, on: 'list' });
    fake.faults.inject({ kind: 'status', status: 429 }, { on: 'login' });
    expect(fake.faults.pending).toBe(3);
    expect((await client.get(`/vouchers/${voucher!.voucher_id}`)).status).toBe(200);
    expect((await client.get('/vouchers')).status).toBe(500);
    expect((await client.get('/vouchers')).status).toBe(500);
    expect((await client.get('/vouchers')).status).toBe(200);
    const login = await careCloudLogin(fake);
    expect(login.status).toBe(429);
    expect(login.headers.get('retry-after')).toBeNull();
    expect(fake.stats.limitViolations).toBe(0);
    expect(fake.faults.pending).toBe(0);
  });

  it('HTML pages, truncated JSON and empty bodies', async () => {
    const fake = await start(createFakeCareCloud({ count: 20, rateLimits: null }));
    const client = await careCloudClient(fake);
    fake.faults.inject({ kind: 'html' });
    fake.faults.inject({ kind: 'html', status: 502 });
    fake.faults.inject({ kind: 'truncated' });
    fake.faults.inject({ kind: 'empty' });
    const html = await client.get('/vouchers');
    expect([html.status, html.headers.get('content-type')]).toEqual([200, 'text/html; charset=utf-8']);
    expect(html.text).toMatch(/^<!DOCTYPE html>/);
    expect((await client.get('/vouchers')).status).toBe(502);
    const truncated = await client.get('/vouchers');
    expect(truncated.status).toBe(200);
    expect(truncated.text.startsWith('{"data":{"vouchers":[')).toBe(true);
    expect(truncated.json).toBeUndefined();
    const empty = await client.get('/vouchers');
    expect([empty.status, empty.text]).toEqual([200, '']);
    expect((await client.get('/vouchers')).json.data.vouchers.length).toBeGreaterThan(0);
  });

  it('a slow answer outlasts a client timeout; stop() does not wait for it', async () => {
    const fake = await start(createFakeCin7({ count: 20, rateLimits: null }));
    const client = cin7Client(fake);
    fake.faults.inject({ kind: 'delay', ms: 30_000 });
    await expect(client.get({}, { signal: AbortSignal.timeout(100) })).rejects.toThrow();
    expect((await client.get()).status).toBe(200);
    fake.faults.inject({ kind: 'delay', ms: 30_000 });
    const pending = client.get();
    await vi.waitFor(() => expect(fake.stats.requests).toBe(3));
    await fake.stop();
    await expect(pending).rejects.toThrow();
  });

  it('a delay, then the normal answer', async () => {
    const fake = await start(createFakeCin7({ count: 20, rateLimits: null }));
    fake.faults.inject({ kind: 'delay', ms: 50 });
    const answer = await cin7Client(fake).get({ rows: 3 });
    expect(answer.status).toBe(200);
    expect(answer.json).toHaveLength(3);
  });

  it('latencyMs slows every answer', async () => {
    const fake = await start(createFakeCin7({ count: 20, rateLimits: null, latencyMs: 5_000 }));
    await expect(cin7Client(fake).get({}, { signal: AbortSignal.timeout(100) })).rejects.toThrow();
  });

  it('pages with more or fewer records than asked, on lists only', async () => {
    const careCloud = await start(createFakeCareCloud({ count: 100, rateLimits: null }));
    const client = await careCloudClient(careCloud);
    careCloud.faults.inject({ kind: 'oversize' });
    careCloud.faults.inject({ kind: 'undersize', by: 3 });
    const [voucher] = careCloud.store.all();
    expect((await client.get(`/vouchers/${voucher!.voucher_id}`)).json.data.voucher_id).toBe(voucher!.voucher_id);
    const over = await client.get('/vouchers', { count: 10 });
    expect(over.json.data.vouchers).toHaveLength(15);
    const under = await client.get('/vouchers', { count: 10 });
    expect(under.json.data.vouchers).toHaveLength(7);
    expect(under.json.data.total_items).toBe(over.json.data.total_items);

    const cin7 = await start(createFakeCin7({ count: 100, rateLimits: null }));
    cin7.faults.inject({ kind: 'oversize', by: 3 });
    expect((await cin7Client(cin7).get({ rows: 10 })).json).toHaveLength(13);
  });

  it('clear() drops every queued fault', async () => {
    const fake = await start(createFakeCin7({ count: 20, rateLimits: null }));
    fake.faults.inject({ kind: 'status', status: 503 }, { times: 5 });
    fake.faults.clear();
    expect(fake.faults.pending).toBe(0);
    expect((await cin7Client(fake).get()).status).toBe(200);
  });
});

describe('churn', () => {
  it('keeps changing the data while started, and stops with the fake', async () => {
    const fake = await start(createFakeCareCloud({ count: 200, rateLimits: null, churn: { everyMs: 10, changes: 2 } }));
    const before = JSON.stringify(fake.store.all());
    await vi.waitFor(() => expect(JSON.stringify(fake.store.all())).not.toBe(before), { timeout: 5000 });
    await fake.stop();
    const stopped = JSON.stringify(fake.store.all());
    await sleep(100);
    expect(JSON.stringify(fake.store.all())).toBe(stopped);
  });
});
