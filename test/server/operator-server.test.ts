/**
 * The operator endpoint against the real Postgres and Redis: liveness and readiness (and what readiness says when
 * something is missing), the token, the security headers, which role serves what, and /api/history against ledger
 * rows inserted by hand.
 */
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../../src/config.ts';
import { createPrisma } from '../../src/db/client.ts';
import type { History } from '../../src/server/history.ts';
import { createOperatorServer, type OperatorServer } from '../../src/server/operator-server.ts';
import { createHarness, type Harness } from '../helpers/sync-harness.ts';

const TOKEN = 'operator-token-for-tests-0123456789';
const NOW = new Date('2026-11-20T12:00:00.000Z');
const at = (minutesBeforeNow: number) => new Date(NOW.getTime() - minutesBeforeNow * 60_000);

let h: Harness;
let server: OperatorServer;
let queues: Queue[];
const extra: { close(): Promise<unknown> | void }[] = [];

function get(path: string, headers: Record<string, string> = {}) {
  return fetch(`${server.url}${path}`, { headers });
}
const authorized = { Authorization: `Bearer ${TOKEN}` };

beforeAll(async () => {
  // Cin7's documented limits, rather than the harness's generous test ones: the history draws them.
  h = await createHarness({ env: { HTTP_TOKEN: TOKEN, CIN7_RATE_LIMIT: '3/s,60/min', CIN7_DAILY_BUDGET: '5000' } });
  queues = ['carecloud', 'cin7'].map((name) => new Queue(name, { connection: h.redis, prefix: h.prefix }));
  server = await createOperatorServer({
    config: h.config,
    role: 'all',
    db: h.db,
    redis: h.redis,
    queues,
    logger: h.logger,
    port: 0,
    now: () => NOW,
  });
});

afterEach(async () => {
  await Promise.all(extra.splice(0).map((thing) => thing.close()));
});

afterAll(async () => {
  await server?.close();
  await Promise.all(queues.map((q) => q.close()));
  await h?.close();
});

async function serverWith(config: Config, deps: Partial<Parameters<typeof createOperatorServer>[0]> = {}) {
  const other = await createOperatorServer({
    config,
    role: 'all',
    db: h.db,
    redis: h.redis,
    queues: [],
    logger: h.logger,
    port: 0,
    ...deps,
  });
  extra.push(other);
  return other;
}

describe('health and readiness', () => {
  it('answers /healthz and /readyz without the token when Postgres and Redis are there', async () => {
    const health = await get('/healthz');
    expect(health.status).toBe(200);
    const ready = await get('/readyz');
    expect([ready.status, await ready.text()]).toEqual([200, 'ready\n']);
  });

  it('is not ready while Redis is unreachable, and says so without its password', async () => {
    const config = loadConfig({ ...h.env, REDIS_URL: 'redis://:redis-password-xyz@127.0.0.1:1' });
    const redis = new Redis('redis://127.0.0.1:1', { lazyConnect: true, retryStrategy: () => null });
    redis.on('error', () => undefined);
    extra.push({ close: () => redis.disconnect() });
    const other = await serverWith(config, { redis });
    const ready = await fetch(`${other.url}/readyz`);
    const text = await ready.text();
    expect(ready.status).toBe(503);
    expect(text).toMatch(/^Redis at redis:\/\/127\.0\.0\.1:1 is unreachable/);
    expect(text).not.toContain('redis-password-xyz');
    // Liveness never asks Redis.
    expect((await fetch(`${other.url}/healthz`)).status).toBe(200);
  });

  it('is not ready while Postgres is unreachable, naming the database without its password', async () => {
    const url = 'postgresql://postgres:pg-password-xyz@127.0.0.1:1/voucher_sync';
    const config = loadConfig({ ...h.env, DATABASE_URL: url });
    const db = createPrisma(url);
    extra.push({ close: () => db.$disconnect() });
    const other = await serverWith(config, { db });
    const ready = await fetch(`${other.url}/readyz`);
    const text = await ready.text();
    expect(ready.status).toBe(503);
    expect(text).toMatch(/^PostgreSQL database postgres@127\.0\.0\.1:1\/voucher_sync is unreachable: /);
    expect(text).not.toContain('pg-password-xyz');
  });

  it('is not ready while a migration of this checkout is not applied', async () => {
    const [last] = await h.db.$queryRaw<{ migration_name: string }[]>`
      SELECT migration_name FROM _prisma_migrations ORDER BY migration_name DESC LIMIT 1`;
    await h.db
      .$executeRaw`UPDATE _prisma_migrations SET rolled_back_at = now() WHERE migration_name = ${last!.migration_name}`;
    try {
      const ready = await get('/readyz');
      expect(ready.status).toBe(503);
      expect(await ready.text()).toContain(`lacks migration ${last!.migration_name}: run npm run db:migrate`);
    } finally {
      await h.db
        .$executeRaw`UPDATE _prisma_migrations SET rolled_back_at = NULL WHERE migration_name = ${last!.migration_name}`;
    }
    expect((await get('/readyz')).status).toBe(200);
  });
});

describe('the token', () => {
  it.each(['/api/status', '/api/history', '/metrics', '/queues/'])('%s needs it', async (path) => {
    const without = await get(path);
    expect(without.status).toBe(401);
    expect(without.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect((await get(path, { Authorization: 'Bearer not-the-token-at-all' })).status).toBe(401);
    const withToken = await get(path, authorized);
    expect(withToken.status).toBe(200);
    expect(await withToken.text()).not.toContain(TOKEN);
  });

  it('trades the token for a session cookie that opens the queue dashboard, never the token itself', async () => {
    const refused = await fetch(`${server.url}/api/session`, { method: 'POST' });
    expect(refused.status).toBe(401);
    const made = await fetch(`${server.url}/api/session`, { method: 'POST', headers: authorized });
    expect(made.status).toBe(204);
    const cookie = made.headers.get('set-cookie')!;
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    expect(cookie).not.toContain(TOKEN);
    const pair = cookie.split(';')[0]!;
    expect((await get('/queues/', { Cookie: pair })).status).toBe(200);
    expect((await get('/api/status', { Cookie: `${pair}x` })).status).toBe(401);
    // The cookie is not a token: sent as one, it is refused.
    expect((await get('/api/status', { Authorization: `Bearer ${pair.split('=')[1]}` })).status).toBe(401);
  });

  it('serves no secret of the configuration anywhere', async () => {
    const secrets = ['CARECLOUD_PASSWORD', 'CARECLOUD_APP_ID', 'CIN7_API_KEY', 'HTTP_TOKEN'].map(
      (name) => h.env[name]!,
    );
    expect(secrets.every((secret) => secret.length >= 4)).toBe(true);
    for (const path of ['/', '/api/status', '/api/history', '/metrics', '/queues/', '/queues/api/queues', '/readyz']) {
      const body = await (await get(path, authorized)).text();
      for (const secret of secrets) expect(body, path).not.toContain(secret);
    }
  });

  it('serves the page itself, which holds no data, without it', async () => {
    const page = await get('/');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect((await get('/assets/app.js')).status).toBe(200);
    expect((await get('/assets/uplot/uPlot.iife.min.js')).status).toBe(200);
  });

  it('sends headers that forbid framing, sniffing and other origins', async () => {
    for (const path of ['/', '/healthz', '/api/status']) {
      const response = await get(path, authorized);
      expect(response.headers.get('x-frame-options')).toBe('DENY');
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
      expect(response.headers.get('content-security-policy')).toContain("default-src 'self'");
      expect(response.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    }
  });

  it('refuses a non-loopback host without a token even when the config was built by hand', async () => {
    const config = { ...h.config, server: { port: 0, host: '0.0.0.0', token: null } } as Config;
    await expect(serverWith(config)).rejects.toThrow(/HTTP_TOKEN must be set/);
  });
});

describe('roles', () => {
  it('a worker serves health, its metrics and the queues, not the status page or its data', async () => {
    const worker = await serverWith(h.config, { role: 'worker', queues });
    const at = (path: string) => fetch(`${worker.url}${path}`, { headers: authorized });
    expect((await at('/healthz')).status).toBe(200);
    expect((await at('/readyz')).status).toBe(200);
    const metrics = await at('/metrics');
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toContain('process_cpu_user_seconds_total');
    expect((await at('/queues/')).status).toBe(200);
    const page = await at('/');
    expect(page.status).toBe(404);
    expect(await page.text()).toContain('served by the scheduler');
    expect((await at('/api/status')).status).toBe(404);
    expect((await at('/api/history')).status).toBe(404);
  });
});

describe('/api/history', () => {
  it('refuses a days value it cannot serve, saying what is wrong', async () => {
    for (const [days, message] of [
      ['0', 'days must be from 1 to 400 (got 0)'],
      ['401', 'days must be from 1 to 400 (got 401)'],
      ['week', 'days must be a whole number of days (got "week")'],
    ] as const) {
      const response = await get(`/api/history?days=${days}`, authorized);
      expect([response.status, (await response.text()).trim()]).toEqual([400, message]);
    }
  });

  it('gives each run, freshness and requests per hour as the ledger has them', async () => {
    const run = (fields: {
      source: string;
      mode?: string;
      status?: string;
      startedAt: Date;
      minutes: number;
      fetched?: number;
      inserted?: number;
      apiCalls?: number;
      logicalRunId?: bigint;
      error?: string;
    }) =>
      h.db.syncRun.create({
        data: {
          source: fields.source,
          stream: 'vouchers',
          mode: fields.mode ?? 'incremental',
          status: fields.status ?? 'succeeded',
          startedAt: fields.startedAt,
          finishedAt: new Date(fields.startedAt.getTime() + fields.minutes * 60_000),
          heartbeatAt: new Date(fields.startedAt.getTime() + fields.minutes * 60_000),
          fetched: fields.fetched ?? 0,
          inserted: fields.inserted ?? 0,
          apiCalls: fields.apiCalls ?? 0,
          logicalRunId: fields.logicalRunId ?? null,
          error: fields.error ?? null,
        },
      });
    // Before the 7 days asked for: only the first freshness point measures from it.
    await run({ source: 'cin7', startedAt: at(8 * 24 * 60), minutes: 1, fetched: 9, apiCalls: 9 });
    await run({ source: 'cin7', startedAt: at(180), minutes: 2, fetched: 100, inserted: 100, apiCalls: 4 });
    await run({
      source: 'cin7',
      startedAt: at(120),
      minutes: 1,
      fetched: 5,
      apiCalls: 2,
      status: 'failed',
      error: 'boom for a@b.example',
    });
    await run({ source: 'cin7', startedAt: at(60), minutes: 3, fetched: 7, apiCalls: 3 });
    // A run resumed by a second job is one run: its first row's start, the sum of its rows, the last row's status.
    const first = await run({
      source: 'carecloud',
      mode: 'full',
      status: 'interrupted',
      startedAt: at(300),
      minutes: 10,
      fetched: 500,
      apiCalls: 5,
    });
    await h.db.syncRun.update({ where: { id: first.id }, data: { logicalRunId: first.id } });
    await run({
      source: 'carecloud',
      mode: 'full',
      startedAt: at(280),
      minutes: 10,
      fetched: 250,
      apiCalls: 3,
      logicalRunId: first.id,
    });
    await h.db.rejectedRecord.create({
      data: {
        source: 'cin7',
        stream: 'vouchers',
        sourceId: 'GIFT-1',
        reason: 'Value: expected a number, got the string "12,50" (customer x.y@example.com)',
        raw: { Code: 'GIFT-1', CustomerEmail: 'raw-only@example.com' },
        rawHash: Buffer.from('hash-1'),
        lastRejectedAt: at(30),
      },
    });

    const response = await get('/api/history?days=7', authorized);
    expect(response.status).toBe(200);
    const text = await response.text();
    expect(text).not.toContain('raw-only@example.com');
    expect(text).not.toContain('x.y@example.com');
    expect(text).not.toContain('a@b.example');
    const history = JSON.parse(text);
    const cin7 = history.sources.find((s: { source: string }) => s.source === 'cin7');
    const carecloud = history.sources.find((s: { source: string }) => s.source === 'carecloud');

    expect(cin7.bucketSeconds).toBe(0);
    expect(
      cin7.runs.map((r: { at: string; records: number; requests: number; status: string; durationSeconds: number }) => [
        r.at,
        r.records,
        r.requests,
        r.status,
        r.durationSeconds,
      ]),
    ).toEqual([
      [at(180).toISOString(), 100, 4, 'succeeded', 120],
      [at(120).toISOString(), 5, 2, 'failed', 60],
      [at(60).toISOString(), 7, 3, 'succeeded', 180],
    ]);
    expect(carecloud.runs).toEqual([
      expect.objectContaining({
        at: at(300).toISOString(),
        mode: 'full',
        status: 'succeeded',
        records: 750,
        requests: 8,
        durationSeconds: 30 * 60,
      }),
    ]);
    // Freshness just before each success ended: since the previous success began.
    expect(cin7.freshness).toEqual([
      { at: at(178).toISOString(), seconds: (8 * 24 * 60 - 178) * 60 },
      { at: at(57).toISOString(), seconds: (180 - 57) * 60 },
    ]);
    expect(carecloud.freshness).toEqual([]);

    // Requests per hour (each of these runs lies within one hour) and over the 24 hours ending with each hour.
    const hour = (d: Date) => new Date(Math.floor(d.getTime() / 3_600_000) * 3_600_000).toISOString();
    const byHour = Object.fromEntries(
      cin7.requests.map((p: { hour: string; requests: number }) => [p.hour, p.requests]),
    );
    expect(byHour[hour(at(180))]).toBe(4);
    expect(byHour[hour(at(120))]).toBe(2);
    expect(byHour[hour(at(60))]).toBe(3);
    expect(cin7.requests.at(-1)).toMatchObject({ hour: hour(NOW), rolling24h: 9 });
    expect(cin7.requests.reduce((sum: number, p: { requests: number }) => sum + p.requests, 0)).toBe(9);
    // 3/s and 60/min: at most 3,600 an hour; and 5,000 a day.
    expect(cin7.limits).toEqual([
      { window: '1s', windowSeconds: 1, limit: 3, perHour: 10_800 },
      { window: '60s', windowSeconds: 60, limit: 60, perHour: 3_600 },
    ]);
    expect([cin7.hourlyLimit, cin7.dailyBudget]).toEqual([3_600, 5_000]);

    expect(history.recentRuns.map((r: { source: string; status: string }) => `${r.source} ${r.status}`)).toEqual([
      'carecloud succeeded',
      'carecloud interrupted',
      'cin7 succeeded',
      'cin7 failed',
      'cin7 succeeded',
      'cin7 succeeded',
    ]);
    expect(history.recentRuns[0].runId).toBe(first.id.toString());
    expect(history.recentRuns[3].error).toBe('boom for [email]');
    expect(history.rejected).toEqual([
      {
        id: expect.any(String),
        source: 'cin7',
        stream: 'vouchers',
        sourceId: 'GIFT-1',
        reason: 'Value: expected a number, got the string "12,50" (customer [email])',
        timesSeen: 1,
        lastRejectedAt: at(30).toISOString(),
      },
    ]);
  });

  it('groups many runs into time buckets that add up to the ledger', async () => {
    // 3,000 five-minute runs of CareCloud over the last ten and a half days: more than the page draws one by one.
    await h.db.$executeRaw`
      INSERT INTO sync_runs (source, stream, mode, status, started_at, finished_at, heartbeat_at, fetched, api_calls)
      SELECT 'carecloud', 'vouchers', 'incremental', CASE WHEN i % 10 = 0 THEN 'failed' ELSE 'succeeded' END,
             ${NOW}::timestamptz - make_interval(mins => 5 * i), ${NOW}::timestamptz - make_interval(mins => 5 * i) + interval '30 seconds',
             ${NOW}::timestamptz - make_interval(mins => 5 * i) + interval '30 seconds', i % 7, 1
        FROM generate_series(1, 3000) i`;
    const response = await get('/api/history?days=7', authorized);
    const carecloud = ((await response.json()) as History).sources.find((s) => s.source === 'carecloud')!;
    const [expected] = await h.db.$queryRaw<{ runs: number; records: number; failed: number }[]>`
      SELECT count(*) FILTER (WHERE logical_run_id IS NULL OR logical_run_id = id)::int AS runs,
             sum(fetched)::int AS records, count(*) FILTER (WHERE status = 'failed')::int AS failed
        FROM sync_runs WHERE source = 'carecloud' AND started_at >= ${new Date(NOW.getTime() - 7 * 86_400_000)}`;
    const history = (await (await get('/api/history?days=1', authorized)).json()) as History;
    // The newest rows by id, not by the text of their ids ("999" after "3006").
    const [newest] = await h.db.$queryRaw<{ id: string }[]>`SELECT max(id)::text AS id FROM sync_runs`;
    expect(history.recentRuns.length).toBe(50);
    expect(history.recentRuns[0]!.id).toBe(newest!.id);
    expect(carecloud.bucketSeconds).toBeGreaterThan(0);
    expect(carecloud.runs.length).toBeLessThanOrEqual(1000);
    const sum = (key: 'runs' | 'records' | 'failed') => carecloud.runs.reduce((total, p) => total + p[key], 0);
    expect({ runs: sum('runs'), records: sum('records'), failed: sum('failed') }).toEqual(expected);
    // A bucket's duration is its longest row's: the 10-minute rows of the resumed run above, the rest 30 s.
    expect(Math.max(...carecloud.runs.map((p: { durationSeconds: number }) => p.durationSeconds))).toBe(600);
    expect(Math.min(...carecloud.runs.map((p: { durationSeconds: number }) => p.durationSeconds))).toBe(30);
    // Successes every 5 minutes, a failure every 50: freshness is at most 10.5 minutes.
    expect(Math.max(...carecloud.freshness.map((p: { seconds: number }) => p.seconds))).toBe(10 * 60 + 30);
  });
});
