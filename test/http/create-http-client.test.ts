import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { HttpConfig } from '../../src/config.ts';
import { AbortedError, FatalSourceError, RateLimitedError, RetriableSourceError } from '../../src/errors.ts';
import type { HttpContext } from '../../src/http/call-options.ts';
import { createHttpClient, parseRetryAfter } from '../../src/http/create-http-client.ts';
import { careCloudErrorDetails } from '../../src/sources/carecloud/error-details.ts';
import { createRateLimiter, type RateLimiter } from '../../src/http/rate-limiter.ts';
import { createLogger } from '../../src/logger.ts';
import { createTestRedis, type TestRedis } from '../helpers/redis.ts';
import {
  captureLogs,
  startLocalServer,
  testHttpConfig,
  type Answer,
  type LocalServer,
  type SeenRequest,
} from './local-server.ts';
import { rejection } from '../helpers/rejection.ts';

const http = testHttpConfig({ retries: 3 });

function countingObserver() {
  const counts = { requests: 0, rateLimited: 0 };
  const observer = { onRequest: () => void counts.requests++, onRateLimited: () => void counts.rateLimited++ };
  return { counts, context: { observer } satisfies HttpContext };
}

describe('createHttpClient', () => {
  let t: TestRedis;
  let server: LocalServer | undefined;
  let limiter: RateLimiter;
  let logs: ReturnType<typeof captureLogs>;

  beforeEach(() => {
    t = createTestRedis();
    limiter = createRateLimiter({
      redis: t.redis,
      key: `${t.prefix}limit`,
      windows: [{ max: 1000, windowMs: 1000 }],
      dailyBudget: null,
    });
    logs = captureLogs();
  });
  afterEach(async () => {
    await server?.close();
    server = undefined;
    await t.cleanup();
  });

  async function serve(
    handler: (request: SeenRequest, attempt: number) => Answer | undefined,
    config: HttpConfig = http,
  ) {
    server = await startLocalServer((request, response) => {
      const answer = handler(request, server!.requests.length);
      if (answer === undefined) response.socket?.destroy();
      return answer;
    });
    // With CareCloud's error details, whose error shape the 4xx cases below answer in.
    return createHttpClient({
      source: 'testsrc',
      baseUrl: `${server.url}/api/v1`,
      http: config,
      limiter,
      logger: createLogger('debug', logs),
      backoffBaseMs: 10,
      errorDetails: careCloudErrorDetails,
    });
  }

  it('retries 503 and succeeds, every attempt taking a limiter slot and reaching the observer', async () => {
    const client = await serve((_r, attempt) =>
      attempt < 3 ? { status: 503, text: 'maintenance' } : { json: { ok: true } },
    );
    const { counts, context } = countingObserver();
    const response = await client.get('things', { context });
    expect(response.body).toEqual({ ok: true });
    expect(server!.requests).toHaveLength(3);
    expect(server!.requests[0]!.url).toBe('/api/v1/things');
    expect(counts).toEqual({ requests: 3, rateLimited: 0 });
    expect((await limiter.usage()).windows[0]!.used).toBe(3);
  });

  it('gives up on 5xx after the configured retries with RetriableSourceError', async () => {
    const client = await serve(() => ({ status: 502, json: { error: { title: 'Bad gateway' } } }));
    const error = await rejection(client.get('things'));
    expect(error).toBeInstanceOf(RetriableSourceError);
    expect((error as RetriableSourceError).status).toBe(502);
    expect((error as Error).message).toContain('Bad gateway');
    expect((error as Error).cause).toBeDefined();
    expect(server!.requests).toHaveLength(http.retries + 1);
  });

  it('treats a dropped connection as retriable', async () => {
    const client = await serve((_r, attempt) => (attempt < 2 ? undefined : { json: [1] }));
    expect((await client.get('things')).body).toEqual([1]);
    expect(server!.requests).toHaveLength(2);
  });

  it('retries a source that does not answer within the read timeout, then gives up as retriable', async () => {
    server = await startLocalServer(() => new Promise<undefined>(() => {})); // never answers
    const config = { ...http, readTimeoutMs: 100, retries: 1 };
    const client = createHttpClient({
      source: 'testsrc',
      baseUrl: server.url,
      http: config,
      logger: createLogger('silent'),
      backoffBaseMs: 10,
    });
    const error = await rejection(client.get('slow'));
    expect(error).toBeInstanceOf(RetriableSourceError);
    expect((error as Error).message).toContain('in time');
    expect(server.requests).toHaveLength(2);
  });

  it('honours a short Retry-After on 429 and then succeeds', async () => {
    const client = await serve((_r, attempt) =>
      attempt === 1 ? { status: 429, headers: { 'retry-after': '1' }, text: '' } : { json: { ok: 1 } },
    );
    const { counts, context } = countingObserver();
    const times: number[] = [];
    const response = await client.get('things', {
      context,
      hooks: { beforeRequest: [() => void times.push(Date.now())] },
    });
    expect(response.body).toEqual({ ok: 1 });
    expect(counts).toEqual({ requests: 2, rateLimited: 1 });
    // The retry did not come before the second the server asked for.
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(950);
  });

  it('turns a long Retry-After into RateLimitedError and pauses the other workers through the limiter', async () => {
    const client = await serve(() => ({ status: 429, headers: { 'retry-after': '120' }, text: 'slow down' }));
    const { counts, context } = countingObserver();
    const error = await rejection(client.get('things', { context }));
    expect(error).toBeInstanceOf(RateLimitedError);
    expect((error as RateLimitedError).retryAfterMs).toBe(120_000);
    expect(server!.requests).toHaveLength(1);
    expect(counts.rateLimited).toBe(1);
    expect((await limiter.usage()).penaltyMs).toBeGreaterThan(100_000);
    // Another worker's request now fails fast instead of hitting the source.
    const other = createHttpClient({
      source: 'testsrc',
      baseUrl: server!.url,
      http,
      limiter,
      logger: createLogger('silent'),
    });
    expect(await rejection(other.get('x'))).toBeInstanceOf(RateLimitedError);
    expect(server!.requests).toHaveLength(1);
  });

  it('raises RateLimitedError when 429 persists after the retries', async () => {
    const client = await serve(() => ({ status: 429, text: '' }));
    const error = await rejection(client.get('things'));
    expect(error).toBeInstanceOf(RateLimitedError);
    expect((error as RateLimitedError).retryAfterMs).toBeGreaterThan(0);
    expect(server!.requests).toHaveLength(http.retries + 1);
  });

  it('accepts Retry-After as an HTTP date', () => {
    const now = Date.parse('2024-01-01T00:00:00Z');
    expect(parseRetryAfter('Mon, 01 Jan 2024 00:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('2', now)).toBe(2000);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
  });

  it.each([400, 403, 404, 405, 422, 401])('maps %i to FatalSourceError without retrying', async (status) => {
    const client = await serve(() => ({
      status,
      json: {
        error: { title: 'Nope', error_data: { invalid_params: [{ name: 'count', reason: 'not_allowed_value' }] } },
      },
    }));
    const error = await rejection(client.get('things?count=0'));
    expect(error).toBeInstanceOf(FatalSourceError);
    expect((error as FatalSourceError).status).toBe(status);
    expect((error as Error).message).toContain('GET /api/v1/things');
    expect((error as Error).message).not.toContain('count=0');
    if (status === 400) expect((error as Error).message).toContain('count: not_allowed_value');
    expect(server!.requests).toHaveLength(1);
  });

  it.each([
    [
      'an HTML page',
      (): Answer => ({ headers: { 'content-type': 'text/html' }, text: '<html><body>Login</body></html>' }),
    ],
    [
      'truncated JSON',
      (): Answer => ({ headers: { 'content-type': 'application/json' }, text: '{"data":{"vouchers":[{"id":' }),
    ],
    ['an empty body', (): Answer => ({ headers: { 'content-type': 'application/json' }, text: '' })],
  ])('maps a 2xx with %s to RetriableSourceError', async (_name, answer) => {
    const client = await serve(answer);
    const error = await rejection(client.get('things'));
    expect(error).toBeInstanceOf(RetriableSourceError);
    expect((error as Error).message).toContain('not JSON');
  });

  it('logs a non-2xx with its body masked, and never the Authorization header or the query', async () => {
    server = await startLocalServer(() => ({
      status: 400,
      json: { error: { detail: 'customer jane.doe@example.com has phone +420 777 123 456' } },
    }));
    const client = createHttpClient({
      source: 'testsrc',
      baseUrl: server.url,
      http,
      logger: createLogger('info', logs),
      headers: { authorization: 'Bearer sekret-token-123' },
    });
    await rejection(client.get('customers?email=jane.doe@example.com'));
    const line = JSON.parse(logs.lines.find((l) => l.includes('"status":400'))!) as Record<string, unknown>;
    expect(line).toMatchObject({ level: 40, source: 'testsrc', method: 'GET', path: '/customers', status: 400 });
    expect(line.body).toContain('[email]');
    expect(line.body).toContain('[phone]');
    expect(logs.text()).not.toContain('jane.doe');
    expect(logs.text()).not.toContain('sekret-token-123');
    expect(server.requests[0]!.headers.authorization).toBe('Bearer sekret-token-123');
  });

  it('never logs a password echoed back by the source', async () => {
    server = await startLocalServer((r) => ({ status: 422, text: `rejected ${r.body}` }));
    const client = createHttpClient({
      source: 'testsrc',
      baseUrl: server.url,
      http,
      logger: createLogger('info', logs),
    });
    await rejection(client.post('login', { json: { login: 'someone', password: 'hunter2-very-secret' } }));
    expect(logs.text()).toContain('rejected');
    expect(logs.text()).not.toContain('hunter2-very-secret');
  });

  it('cancels a request waiting for a limiter slot, without reaching the source', async () => {
    limiter = createRateLimiter({
      redis: t.redis,
      key: `${t.prefix}tight`,
      windows: [{ max: 1, windowMs: 3000 }],
      dailyBudget: null,
    });
    const client = await serve(() => ({ json: {} }));
    await client.get('first');
    const controller = new AbortController();
    const pending = client.get('second', { signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    expect(await rejection(pending)).toBeInstanceOf(AbortedError);
    expect(server!.requests).toHaveLength(1);
  });

  it('cancels a request waiting to retry', async () => {
    const client = await serve(() => ({ status: 503, headers: { 'retry-after': '3' }, text: '' }));
    const controller = new AbortController();
    const pending = client.get('things', { signal: controller.signal });
    setTimeout(() => controller.abort(), 200);
    expect(await rejection(pending)).toBeInstanceOf(AbortedError);
    expect(server!.requests).toHaveLength(1);
  });

  it('hands a limiter wait longer than maxInlineWaitMs to the caller as RateLimitedError', async () => {
    limiter = createRateLimiter({
      redis: t.redis,
      key: `${t.prefix}tight`,
      windows: [{ max: 1, windowMs: 60_000 }],
      dailyBudget: null,
    });
    const client = await serve(() => ({ json: {} }));
    await client.get('first');
    const error = await rejection(client.get('second'));
    expect(error).toBeInstanceOf(RateLimitedError);
    expect((error as RateLimitedError).retryAfterMs).toBeGreaterThan(50_000);
    expect(server!.requests).toHaveLength(1);
  });
});
