/**
 * The shared HTTP client against answers no well-behaved server sends: other charsets, gzip bombs, pages far larger
 * than asked, a slow drip, redirects to another host, and errors that echo the credentials back.
 */
import type { ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import type { HttpConfig } from '../../src/config.ts';
import { FatalSourceError, ResponseTooLargeError, RetriableSourceError } from '../../src/errors.ts';
import { createHttpClient } from '../../src/http/create-http-client.ts';
import { createLogger } from '../../src/logger.ts';
import { registerSecret, scrubError, scrubSecrets } from '../../src/secrets.ts';
import { gzipBombBytes } from '../hostile/http-behaviours.ts';
import { rejection } from '../helpers/rejection.ts';
import { captureLogs, startLocalServer, type LocalServer, type SeenRequest } from './local-server.ts';

const MB = 1024 ** 2;
const http: HttpConfig = {
  connectTimeoutMs: 2000,
  readTimeoutMs: 2000,
  retries: 2,
  maxInlineWaitMs: 5000,
  retryBackoffMs: 10,
  requestTimeoutMs: 10_000,
  maxResponseBytes: 16 * MB,
};

describe('answers the client does not trust', () => {
  const servers: LocalServer[] = [];
  afterEach(async () => {
    for (const server of servers.splice(0)) await server.close();
  });

  async function serve(handler: (request: SeenRequest, response: ServerResponse) => void, config: HttpConfig = http) {
    const server = await startLocalServer((request, response) => (handler(request, response), undefined));
    servers.push(server);
    const logs = captureLogs();
    const client = createHttpClient({
      source: 'testsrc',
      baseUrl: `${server.url}/api/v1`,
      baseUrlSetting: 'TESTSRC_BASE_URL',
      http: config,
      logger: createLogger('debug', logs),
    });
    return { client, server, logs };
  }

  const raw =
    (status: number, headers: Record<string, string>, body: Buffer | string) =>
    (_r: SeenRequest, response: ServerResponse) => {
      response.writeHead(status, headers);
      response.end(body);
    };

  describe('charsets', () => {
    it.each([
      ['iso-8859-1', Buffer.from('{"note":"café crème"}', 'latin1')],
      [
        'windows-1250',
        Buffer.from([...Buffer.from('{"note":"'), 0x9a, 0x74, 0x72, 0xfa, 0x64, 0x65, 0x6c, ...Buffer.from('"}')]),
      ],
      ['utf-16le', Buffer.from('{"note":"café"}', 'utf16le')],
    ])('decodes a body declared %s by its charset', async (charset, body) => {
      const { client } = await serve(raw(200, { 'content-type': `application/json; charset=${charset}` }, body));
      const expected = charset === 'windows-1250' ? 'štrúdel' : charset === 'utf-16le' ? 'café' : 'café crème';
      expect((await client.get('things')).body).toEqual({ note: expected });
    });

    it('fails a body in a charset it cannot decode, naming the charset, without retrying', async () => {
      const { client, server } = await serve(
        raw(200, { 'content-type': 'application/json; charset=x-klingon' }, '{"note":"x"}'),
      );
      const error = await rejection(client.get('things'));
      expect(error).toBeInstanceOf(RetriableSourceError);
      expect((error as Error).message).toBe(
        'testsrc answered GET /api/v1/things with a body that declares charset "x-klingon", which is not one we can decode',
      );
      expect(server.requests).toHaveLength(1);
    });

    it('fails a body whose bytes are not valid in the charset it declares, rather than store U+FFFD', async () => {
      const { client } = await serve(
        raw(200, { 'content-type': 'application/json' }, Buffer.from('{"note":"café"}', 'latin1')),
      );
      const error = await rejection(client.get('things'));
      expect(error).toBeInstanceOf(RetriableSourceError);
      expect((error as Error).message).toContain('bytes that are not valid utf-8');
    });
  });

  describe('size', () => {
    it('stops reading a gzip bomb at HTTP_MAX_RESPONSE_SIZE once decompressed, at once and without growing the heap', async () => {
      const bomb = await gzipBombBytes();
      expect(bomb.length).toBeLessThan(MB);
      const { client, server } = await serve(
        raw(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' }, bomb),
      );
      const rssBefore = process.memoryUsage().rss;
      const started = Date.now();
      const error = await rejection(client.get('vouchers?count=100'));
      expect(error).toBeInstanceOf(ResponseTooLargeError);
      expect((error as ResponseTooLargeError).limitBytes).toBe(16 * MB);
      expect((error as Error).message).toBe(
        'testsrc answer to GET /api/v1/vouchers grew past 16 MB once decompressed, more than HTTP_MAX_RESPONSE_SIZE (16 MB): stopped reading it',
      );
      expect(Date.now() - started).toBeLessThan(3000);
      expect(server.requests).toHaveLength(1); // not retried: the same request would bring the same bomb
      expect(process.memoryUsage().rss - rssBefore).toBeLessThan(100 * MB);
    });

    it('refuses a 50 MB page by its Content-Length before reading it, and one without a length at the cap', async () => {
      const page = Buffer.alloc(50 * MB, 0x20);
      const declared = await serve(
        raw(200, { 'content-type': 'application/json', 'content-length': String(page.length) }, page),
      );
      const error = await rejection(declared.client.get('vouchers'));
      expect(error).toBeInstanceOf(ResponseTooLargeError);
      expect((error as Error).message).toContain('declared 50 MB, more than HTTP_MAX_RESPONSE_SIZE (16 MB)');

      const chunked = await serve((_r, response) => {
        response.writeHead(200, { 'content-type': 'application/json' });
        const write = (left: number): void => {
          if (left === 0 || response.destroyed) return void response.end();
          response.write(page.subarray(0, MB), () => write(left - 1));
        };
        write(50);
      });
      const second = await rejection(chunked.client.get('vouchers'));
      expect(second).toBeInstanceOf(ResponseTooLargeError);
      expect((second as Error).message).toContain('grew past 16 MB once decompressed');
      expect(chunked.server.requests).toHaveLength(1);
    });

    it('reads a response just under the cap', async () => {
      const body = JSON.stringify({ note: 'x'.repeat(MB - 20) });
      const { client } = await serve(raw(200, { 'content-type': 'application/json' }, body), {
        ...http,
        maxResponseBytes: MB,
      });
      expect(((await client.get('things')).body as unknown as { note: string }).note).toHaveLength(MB - 20);
    });
  });

  it('ends a slow drip at the overall deadline (HTTP_REQUEST_TIMEOUT) with a retriable error, without retrying it inline', async () => {
    const { client, server } = await serve(
      (_r, response) => {
        response.writeHead(200, { 'content-type': 'application/json' });
        const timer = setInterval(() => response.write(' '), 500);
        response.on('close', () => clearInterval(timer));
      },
      { ...http, readTimeoutMs: 1000, requestTimeoutMs: 1500 },
    );
    const started = Date.now();
    const error = await rejection(client.get('vouchers'));
    expect(error).toBeInstanceOf(RetriableSourceError);
    expect((error as Error).message).toBe(
      'testsrc did not finish GET /api/v1/vouchers within the overall deadline of 1.5 s (HTTP_REQUEST_TIMEOUT)',
    );
    expect(Date.now() - started).toBeLessThan(3000);
    expect(server.requests).toHaveLength(1);
  });

  describe('redirects', () => {
    it.each([302, 307])(
      'refuses a %i to another origin, naming its host; that host receives nothing',
      async (status) => {
        const elsewhere = await startLocalServer(() => ({ json: { data: { bearer_token: 'stolen' } } }));
        servers.push(elsewhere);
        const { client } = await serve(raw(status, { location: `${elsewhere.url}/api/v1/users/actions/login` }, ''));
        const error = await rejection(
          client.post('users/actions/login', { json: { login: 'me', password: 'pw-never-elsewhere' } }),
        );
        expect(error).toBeInstanceOf(FatalSourceError);
        const host = new URL(elsewhere.url).host;
        expect((error as Error).message).toContain(
          `redirected POST /api/v1/users/actions/login (${status}) to ${host}, outside TESTSRC_BASE_URL`,
        );
        expect(elsewhere.requests).toHaveLength(0);
      },
    );

    it('refuses a redirect out of the base path on the same origin, and follows one within it', async () => {
      const { client, server } = await serve((request, response) => {
        if (request.url === '/api/v1/old') return void raw(301, { location: '/api/v1/new' }, '')(request, response);
        if (request.url === '/api/v1/away') return void raw(302, { location: '/admin/export' }, '')(request, response);
        raw(200, { 'content-type': 'application/json' }, '{"moved":true}')(request, response);
      });
      expect((await client.get('old')).body).toEqual({ moved: true });
      const error = await rejection(client.get('away'));
      expect(error).toBeInstanceOf(FatalSourceError);
      expect((error as Error).message).toContain(
        `to ${new URL(server.url).host}/admin/export, outside TESTSRC_BASE_URL`,
      );
      expect(server.requests.map((r) => r.url)).toEqual(['/api/v1/old', '/api/v1/new', '/api/v1/away']);
    });
  });

  describe('secrets', () => {
    const password = `pw-${Math.random().toString(36).slice(2)}"/&`;
    registerSecret(password);
    registerSecret(`redis://:redis-${password.slice(3, 12)}@localhost:6379`);

    it('scrubs a registered secret, in its JSON and URL-encoded forms, and a URL password, from any text', () => {
      const redisPassword = `redis-${password.slice(3, 12)}`;
      const text = `a ${password} b ${JSON.stringify(password)} c ${encodeURIComponent(password)} d ${redisPassword}`;
      const scrubbed = scrubSecrets(text);
      for (const form of [password, JSON.stringify(password).slice(1, -1), encodeURIComponent(password), redisPassword])
        expect(scrubbed).not.toContain(form);
      expect(scrubbed).toContain('[redacted]');
      const error = scrubError(new Error(`login failed for ${password}`, { cause: new Error(`echo ${password}`) }));
      expect(`${error.message} ${error.stack} ${(error.cause as Error).message}`).not.toContain(password);
    });

    it('keeps a password echoed in an error body out of the error and the log', async () => {
      const { client, logs } = await serve((request, response) =>
        raw(
          400,
          { 'content-type': 'application/json' },
          JSON.stringify({ error: { message: `bad: ${request.body}` } }),
        )(request, response),
      );
      const error = await rejection(client.post('login', { json: { password } }));
      expect(error).toBeInstanceOf(FatalSourceError);
      expect((error as Error).message).toContain('bad: {"password":"[redacted]"}');
      expect(logs.text()).toContain('[redacted]');
      createLogger('info', logs).error({ err: new Error(`boom ${password}`) }, `boom ${password}`);
      // The random part, in whatever escaping: the echo is logged as JSON inside JSON inside a JSON line.
      expect(logs.text()).not.toContain(password.slice(0, 10));
    });
  });
});
