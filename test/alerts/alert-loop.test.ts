import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startAlertLoop, type AlertLoop, type AlertPayload } from '../../src/alerts/alert-loop.ts';
import { createWebhookSender, type WebhookOptions } from '../../src/alerts/webhook.ts';
import { Secret } from '../../src/config-fields.ts';
import { createLogger } from '../../src/logger.ts';
import type { SourceStatus, StatusReport } from '../../src/status/types.ts';
import { runOnce } from '../../jobs/run-once.ts';
import { startService, type Service } from '../../jobs/service.ts';
import { createHarness, REDIS_URL, type Harness } from '../helpers/sync-harness.ts';
import { startLocalServer, type Answer, type LocalServer, type SeenRequest } from '../http/local-server.ts';
import { createTestRedis, type TestRedis } from '../helpers/redis.ts';
import { sourceStatus } from '../helpers/source-status.ts';

const TOKEN = new Secret('http-token-0123456789abcdef');
const EMAIL = 'jana.novakova@example.com';

function statusOf(source: string, overrides: Partial<SourceStatus> = {}): SourceStatus {
  return sourceStatus(source, overrides);
}

const reportOf = (...sources: SourceStatus[]): StatusReport => ({
  at: new Date().toISOString(),
  serviceUp: true,
  processes: [],
  sources,
});

let t: TestRedis;
let server: LocalServer | undefined;
const loops: AlertLoop[] = [];
let logLines: string[];

beforeEach(() => {
  t = createTestRedis();
  logLines = [];
});
afterEach(async () => {
  await Promise.all(loops.splice(0).map((loop) => loop.stop()));
  await server?.close();
  server = undefined;
  await t.cleanup();
});

/** A receiver whose answer to the n-th request (from 0) `answer` decides; undefined leaves it hanging. */
async function receiver(answer: (n: number) => Answer | undefined = () => ({ status: 204 })) {
  let n = 0;
  server = await startLocalServer(() => {
    const decided = answer(n++);
    return decided ?? new Promise<undefined>(() => undefined);
  });
  const url = new Secret(`${server.url}/hooks/T000/B000/webhook-secret-path-42`);
  return { url, requests: server.requests };
}

function loopOf(readStatus: () => StatusReport, url: Secret, webhook: Omit<WebhookOptions, 'url'> = {}) {
  const logger = createLogger(
    'debug',
    new Writable({ write: (chunk, _enc, done) => (logLines.push(String(chunk)), done()) }),
  );
  const loop = startAlertLoop({
    redis: t.redis,
    prefix: t.prefix,
    readStatus: async () => readStatus(),
    send: createWebhookSender({ url, retries: 2, backoffMs: 10, ...webhook }),
    rules: { failingRuns: 3 },
    logger,
    // Checks run when the test says.
    intervalMs: 3_600_000,
  });
  loops.push(loop);
  return loop;
}

const events = (requests: SeenRequest[]) => requests.map((r) => (JSON.parse(r.body) as AlertPayload).event);

describe('alert webhook', () => {
  it('posts once per change of state — failing, then recovered — across checks and schedulers', async () => {
    const { url, requests } = await receiver();
    let current = reportOf(statusOf('cin7'), statusOf('carecloud'));
    const first = loopOf(() => current, url);
    await first.evaluate();
    expect(requests).toHaveLength(0);

    const failing = statusOf('cin7', {
      state: 'failing',
      consecutiveFailures: 3,
      lastError: {
        at: '2026-12-01T10:05:00.000Z',
        // A server that echoed what it was sent, and a customer's address.
        message: `cin7 answered 500: bad token ${TOKEN.reveal()} for ${EMAIL}, see ${url.reveal()}`,
      },
    });
    current = reportOf(failing, statusOf('carecloud'));
    await first.evaluate();
    await first.evaluate();
    // Another scheduler, or this one restarted, checks the same state.
    const second = loopOf(() => current, url);
    await second.evaluate();
    expect(events(requests)).toEqual(['failing']);
    const alert = JSON.parse(requests[0]!.body) as AlertPayload;
    expect(alert).toMatchObject({ source: 'cin7', event: 'failing', consecutiveFailures: 3, installation: t.prefix });
    expect(alert.text).toContain('cin7 is failing: 3 runs in a row failed');
    expect(requests[0]!.headers['content-type']).toMatch(/^application\/json/);

    current = reportOf(statusOf('cin7'), statusOf('carecloud'));
    await second.evaluate();
    await first.evaluate();
    expect(events(requests)).toEqual(['failing', 'recovered']);

    for (const request of requests) {
      const seen = JSON.stringify({ body: request.body, headers: request.headers });
      expect(seen).not.toContain(TOKEN.reveal());
      expect(seen).not.toContain('webhook-secret-path-42');
      expect(seen).not.toContain(EMAIL);
    }
    expect(logLines.join('')).not.toContain('webhook-secret-path-42');
    expect(logLines.join('')).toContain('alert sent: cin7 failing');
  });

  it('retries a delivery the receiver answered 500 to, and sends it no more once delivered', async () => {
    const { url, requests } = await receiver((n) => (n === 0 ? { status: 500, text: 'busy' } : { status: 200 }));
    const budget = { used: 4500, limit: 5000, windowSeconds: 86_400 };
    const loop = loopOf(() => reportOf(statusOf('cin7', { budget })), url);
    await loop.evaluate();
    await loop.evaluate();
    expect(events(requests)).toEqual(['budget_high', 'budget_high']);
    const [tried, retried] = requests.map((r) => JSON.parse(r.body) as AlertPayload);
    // The same alert, so a receiver can tell a retry from a new one.
    expect(retried!.id).toBe(tried!.id);
    expect(retried!.text).toContain('cin7 has used 4500 of its daily budget of 5000 requests');
  });

  it('gives up on a receiver that hangs without holding the loop, and sends the alert at a later check', async () => {
    let hanging = true;
    const { url, requests } = await receiver(() => (hanging ? undefined : { status: 204 }));
    const loop = loopOf(() => reportOf(statusOf('cin7', { stale: true, freshnessSeconds: 7200 })), url, {
      timeoutMs: 200,
      retries: 1,
    });
    await loop.evaluate();
    expect(events(requests)).toEqual(['stale', 'stale']);
    expect(logLines.join('')).toContain('could not send the alert');
    expect(logLines.join('')).not.toContain('webhook-secret-path-42');

    hanging = false;
    await loop.evaluate();
    await loop.evaluate();
    expect(events(requests)).toEqual(['stale', 'stale', 'stale']);
  });

  it('stops at once while a receiver hangs', async () => {
    const { url, requests } = await receiver(() => undefined);
    const loop = loopOf(() => reportOf(statusOf('cin7', { consecutiveFailures: 5 })), url, { timeoutMs: 120_000 });
    const checking = loop.evaluate();
    while (requests.length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
    await loop.stop();
    await checking;
    // Not delivered, so not recorded as sent: the next scheduler to check sends it.
    expect(await t.redis.get(`${t.prefix}:alerts:cin7`)).toBe(
      JSON.stringify({ failing: false, stale: false, budgetHigh: false }),
    );
  });
});

describe('alerts in the service', () => {
  let h: Harness | undefined;
  const services: Service[] = [];
  afterEach(async () => {
    for (const service of services.splice(0)) await service.stop();
    await h?.close();
    h = undefined;
  });

  it('a scheduler posts what readStatus says: a source that started failing', async () => {
    const { url, requests } = await receiver();
    h = await createHarness({
      hostile: true,
      env: {
        ALERT_WEBHOOK_URL: url.reveal(),
        ALERT_FAILING_RUNS: '1',
        JOB_ATTEMPTS: '1',
        CIN7_SCHEDULE: 'off',
        CIN7_RECONCILE_SCHEDULE: 'off',
        CARECLOUD_SCHEDULE: 'off',
        CARECLOUD_RECONCILE_SCHEDULE: 'off',
      },
    });
    // A worker alone sends no alert.
    const worker = await startService(h.config, h.logger, { schedulers: false });
    services.push(worker);
    h.hostile.cin7.set(({ response }) => {
      response.writeHead(401, { 'content-type': 'application/json' });
      response.end('{"error":"unauthorized"}');
      return undefined;
    });
    const outcomes = await runOnce(worker, REDIS_URL, h.prefix, 'incremental', 'cli');
    expect(outcomes.map((o) => [o.source, o.ok])).toEqual(
      expect.arrayContaining([
        ['carecloud', true],
        ['cin7', false],
      ]),
    );
    expect(requests).toHaveLength(0);
    // A scheduler checks at once when it starts.
    services.push(await startService(h.config, h.logger, { workers: false }));
    for (let i = 0; i < 200 && requests.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(events(requests)).toEqual(['failing']);
    const alert = JSON.parse(requests[0]!.body) as AlertPayload;
    expect(alert).toMatchObject({ source: 'cin7', consecutiveFailures: 1, installation: h.prefix });
    expect(alert.lastError?.message).toContain('401');
    expect(h.logLines.join('')).not.toContain('webhook-secret-path-42');
  });
});
