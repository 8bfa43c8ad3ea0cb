/**
 * Runs against servers that misbehave at the HTTP level (issue #9, items 4, 6, 7, 9, 10 and Redis): a page in
 * another charset, a gzip bomb, a 50 MB page, a slow drip, a redirect to another host, an error echoing the
 * credentials, and Redis out of reach. Each run must end — stored right, or failed with an error naming what the
 * server did — and no secret may reach the ledger, Redis, the log or the command's output.
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { ResponseTooLargeError, RetriableSourceError } from '../../src/errors.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { runCommand } from '../helpers/run-command.ts';
import { createHarness, REDIS_URL, type Harness } from '../helpers/sync-harness.ts';
import { rejection } from '../helpers/rejection.ts';
import { startLocalServer, type LocalServer } from '../http/local-server.ts';
import {
  echoRequest,
  gzipBomb,
  hugePage,
  onVoucherList,
  redirectTo,
  reencoded,
  slowDrip,
} from '../hostile/http-behaviours.ts';

const MB = 1024 ** 2;

let h: Harness | undefined;
const others: LocalServer[] = [];
afterEach(async () => {
  for (const server of others.splice(0)) await server.close();
  await h?.close();
  h = undefined;
});

const lastRun = (source: string) => h!.db.syncRun.findFirstOrThrow({ where: { source }, orderBy: { id: 'desc' } });
const listRequests = (source: 'carecloud' | 'cin7') =>
  h!.hostile[source].requests.filter((r) => onVoucherList({ ...r, body: Buffer.from(r.body) })).length;

describe('runs against a hostile HTTP server', () => {
  it('stores text sent as iso-8859-1 as what it says ("café"), not mangled', async () => {
    h = await createHarness({ hostile: true, careCloud: { count: 300 } });
    h.hostile.carecloud.set(reencoded((voucher) => void (voucher.note = `café ${String(voucher.voucher_id)}`)));
    const result = await h.sync('carecloud', 'full');
    const rows = await h.vouchers('carecloud');
    expect(result.counters.rejected).toBe(0);
    expect(rows.length).toBeGreaterThan(250);
    for (const row of rows) expect((row.raw as { note?: string }).note).toBe(`café ${row.sourceId}`);
  });

  it('fails a run whose pages are gzip bombs at HTTP_MAX_RESPONSE_SIZE, quickly and without growing the heap', async () => {
    h = await createHarness({ hostile: true, careCloud: { count: 300 }, env: { HTTP_MAX_RESPONSE_SIZE: '4MB' } });
    h.hostile.carecloud.set(gzipBomb());
    const rssBefore = process.memoryUsage().rss;
    const started = Date.now();
    const error = await rejection(h.sync('carecloud', 'full'));
    expect(error).toBeInstanceOf(ResponseTooLargeError);
    expect((error as Error).message).toContain('more than HTTP_MAX_RESPONSE_SIZE (4 MB)');
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(150 * MB);
    const run = await lastRun('carecloud');
    expect(run.status).toBe('failed');
    expect(run.error).toContain('HTTP_MAX_RESPONSE_SIZE');
    expect(await h.db.voucher.count()).toBe(0);
    expect(listRequests('carecloud')).toBeLessThan(40); // one per page size tried, never a retry of the same bomb
  });

  it('fails a run whose page is 50 MB with the size error, whether it declares its length or not', async () => {
    for (const chunked of [false, true]) {
      h = await createHarness({ hostile: true, cin7: { count: 300 } });
      h.hostile.cin7.set(hugePage(50, { chunked }));
      const error = await rejection(h.sync('cin7', 'full'));
      expect(error, `chunked: ${chunked}`).toBeInstanceOf(ResponseTooLargeError);
      expect((await lastRun('cin7')).status).toBe('failed');
      expect(listRequests('cin7')).toBeLessThan(40);
      await h.close();
      h = undefined;
    }
  });

  it('ends a run against a slow drip at HTTP_REQUEST_TIMEOUT, failed and retriable, instead of hanging', async () => {
    h = await createHarness({
      hostile: true,
      careCloud: { count: 300 },
      env: { HTTP_READ_TIMEOUT: '1s', HTTP_REQUEST_TIMEOUT: '2s', HTTP_RETRIES: '0' },
    });
    h.hostile.carecloud.set(slowDrip(500));
    const started = Date.now();
    const error = await rejection(h.sync('carecloud'));
    expect(error).toBeInstanceOf(RetriableSourceError);
    expect((error as Error).message).toMatch(
      /did not finish GET \S+\/vouchers within the overall deadline of 2 s \(HTTP_REQUEST_TIMEOUT\)/,
    );
    expect(Date.now() - started).toBeLessThan(10_000);
    const run = await lastRun('carecloud');
    expect(run.status).toBe('failed');
    expect(run.error).toContain('overall deadline');
    expect(listRequests('carecloud')).toBe(1);
  });

  describe('redirects to another host', () => {
    it.each([302, 307])(
      'on the CareCloud login (%i): the other host receives nothing and the run fails naming it',
      async (status) => {
        const elsewhere = await startLocalServer(() => ({
          json: { data: { bearer_token: 'from-elsewhere', valid_to: '2099-01-01 00:00:00' } },
        }));
        others.push(elsewhere);
        h = await createHarness({ hostile: true, careCloud: { count: 100 } });
        h.hostile.carecloud.set(redirectTo((r) => `${elsewhere.url}${r.path}`, status));
        const error = await rejection(h.sync('carecloud'));
        const host = new URL(elsewhere.url).host;
        expect((error as Error).message).toContain(`(${status}) to ${host}, outside CARECLOUD_BASE_URL`);
        expect(elsewhere.requests).toHaveLength(0);
        const run = await lastRun('carecloud');
        expect(run.status).toBe('failed');
        expect(run.error).toContain(host);
        expect(await h.db.voucher.count()).toBe(0);
      },
    );

    it('on the Cin7 list: the Basic credentials stay home', async () => {
      const elsewhere = await startLocalServer(() => ({ json: [] }));
      others.push(elsewhere);
      h = await createHarness({ hostile: true, cin7: { count: 100 } });
      h.hostile.cin7.set(redirectTo((r) => `${elsewhere.url}${r.path}`, 307, onVoucherList));
      const error = await rejection(h.sync('cin7'));
      expect((error as Error).message).toContain(`to ${new URL(elsewhere.url).host}, outside CIN7_BASE_URL`);
      expect(elsewhere.requests).toHaveLength(0);
      expect((await lastRun('cin7')).status).toBe('failed');
    });
  });

  it('keeps credentials a server echoes in a 400 out of sync_runs, the failed jobs, the log and the command output', async () => {
    const careCloud = {
      login: 'cc-api-user',
      password: `Cc-pw-${randomBytes(8).toString('hex')}`,
      appId: `cc-app-${randomBytes(8).toString('hex')}`,
    };
    const cin7 = { username: 'cin7-api-user', apiKey: `c7-key-${randomBytes(8).toString('hex')}` };
    h = await createHarness({
      hostile: true,
      careCloud: { count: 50, credentials: careCloud },
      cin7: { count: 50, credentials: cin7 },
    });
    h.hostile.carecloud.set(echoRequest(400));
    h.hostile.cin7.set(echoRequest(400));
    const basic = Buffer.from(`${cin7.username}:${cin7.apiKey}`).toString('base64');
    const secrets = [careCloud.password, careCloud.appId, cin7.apiKey, basic];

    // In this process: the engine, its ledger and its log.
    await rejection(h.sync('carecloud'));
    await rejection(h.sync('cin7'));
    // Through the command line: the queues, the worker, Redis and what is printed.
    const run = await runCommand('src/cli/main.ts', ['sync', '--source', 'all'], {
      ...h.env,
      JOB_ATTEMPTS: '1',
      HTTP_RETRIES: '0',
    });
    const output = run.stdout + run.stderr;
    expect(run.code, output.slice(-2000)).toBe(1);
    expect(run.stdout).toMatch(
      /carecloud\s+FAILED\s+carecloud answered 400 Bad Request to POST \S+\/users\/actions\/login: Bad request; Could not process/,
    );
    expect(run.stdout).toMatch(/cin7\s+FAILED\s+cin7 answered 400 Bad Request to GET \/api\/v1\/Voucher/);

    // The echo really reached us: the proxy saw the secrets, and the ledger kept the server's (scrubbed) words.
    const seen =
      JSON.stringify(h.hostile.carecloud.requests.map((r) => r.body)) +
      JSON.stringify(h.hostile.cin7.requests.map((r) => r.headers.authorization));
    for (const secret of [careCloud.password, careCloud.appId, basic]) expect(seen).toContain(secret);
    const runs = await h.db.syncRun.findMany({ orderBy: { id: 'asc' } });
    expect(runs.map((r) => r.status)).toEqual(['failed', 'failed', 'failed', 'failed']);
    expect(runs.every((r) => r.error?.includes('[redacted]'))).toBe(true);

    const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    const failedReasons: string[] = [];
    try {
      for (const source of ['carecloud', 'cin7']) {
        const queue = new Queue(source, { connection, prefix: h.prefix });
        for (const job of await queue.getJobs(['failed']))
          failedReasons.push(job.failedReason, ...(job.stacktrace ?? []));
        await queue.close();
      }
    } finally {
      connection.disconnect();
    }
    expect(failedReasons.filter((r) => /^(carecloud|cin7) answered 400/.test(r))).toHaveLength(2); // the reasons; the rest are stacks

    const places = {
      output,
      ledger: JSON.stringify(runs.map((r) => r.error)),
      redis: failedReasons.join('\n'),
      log: h.logLines.join(''),
    };
    for (const [place, text] of Object.entries(places)) {
      expect(text.length, place).toBeGreaterThan(0);
      expect(
        secrets.filter((secret) => text.includes(secret)),
        place,
      ).toEqual([]);
    }
  });

  it('gives up on an unreachable Redis after a bounded wait with one line naming REDIS_URL, without its password', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as { port: number };
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const password = 'redis-pw-not-for-print';
    const database = await createTestDatabase();
    const run = await runCommand('src/cli/main.ts', ['sync', '--source', 'all'], {
      REDIS_URL: `redis://:${password}@127.0.0.1:${port}`,
      DATABASE_URL: database.url,
    }).finally(() => database.drop());
    expect(run.code).toBe(1);
    expect(run.ms).toBeLessThan(25_000);
    expect(run.stdout).toBe('');
    expect(run.stderr.trim().split('\n')).toEqual([
      `RedisUnreachableError: Redis at redis://127.0.0.1:${port} (REDIS_URL) is unreachable; gave up after 15 s: connect ECONNREFUSED 127.0.0.1:${port}`,
    ]);
    expect(run.stderr).not.toContain(password);
  });
});
