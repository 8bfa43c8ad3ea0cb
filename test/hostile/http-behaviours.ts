/**
 * Hostile behaviours of the HTTP layer, for the proxy in ./hostile-server.ts: a body in another charset, a gzip
 * bomb, a page far larger than asked, a slow drip, a redirect to another host, an error that echoes the request.
 * Each takes a `when` predicate choosing the requests it applies to; the others are forwarded unchanged.
 */
import { once } from 'node:events';
import type { ServerResponse } from 'node:http';
import { createGzip } from 'node:zlib';
import type { Behaviour, HostileRequest, Upstream } from './hostile-server.ts';

export type When = (request: HostileRequest) => boolean;

/** CareCloud's list of vouchers, Cin7's list, CareCloud's login. */
export const onVoucherList: When = (r) =>
  r.method === 'GET' && (r.path.endsWith('/vouchers') || r.path.endsWith('/v1/Voucher'));
export const onLogin: When = (r) => r.path.endsWith('/users/actions/login');

/** JSON whose characters past U+00FF are escaped, so that the text fits ISO-8859-1. */
function latin1Json(value: unknown): string {
  return JSON.stringify(value).replace(
    /[\u0100-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/**
 * Forwards, edits each voucher of the page with `edit` (e.g. to put "café" in its note), and sends the page encoded
 * as `charset` (default iso-8859-1), declared in its Content-Type.
 */
export function reencoded(
  edit: (voucher: Record<string, unknown>, index: number) => void,
  options: { when?: When; charset?: string } = {},
): Behaviour {
  const { when = onVoucherList, charset = 'iso-8859-1' } = options;
  return async ({ request, forward }) => {
    const answer = await forward();
    if (!when(request) || !answer.json) return answer;
    const json = answer.json as { data?: { vouchers?: Record<string, unknown>[] } } | Record<string, unknown>[];
    const vouchers = Array.isArray(json) ? json : (json.data?.vouchers ?? []);
    vouchers.forEach(edit);
    const body = Buffer.from(latin1Json(json), 'latin1');
    return {
      ...answer,
      body,
      json,
      headers: { ...answer.headers, 'content-type': `application/json; charset=${charset}` },
    } satisfies Upstream;
  };
}

let bomb: Promise<Buffer> | undefined;

/** `megabytes` of spaces gzipped (300 MB become about 300 kB), built once, chunk by chunk, never whole in memory. */
export function gzipBombBytes(megabytes = 300): Promise<Buffer> {
  bomb ??= (async () => {
    const gzip = createGzip({ level: 9 });
    const chunks: Buffer[] = [];
    gzip.on('data', (chunk: Buffer) => chunks.push(chunk));
    const spaces = Buffer.alloc(1024 * 1024, 0x20);
    for (let i = 0; i < megabytes; i++) if (!gzip.write(spaces)) await once(gzip, 'drain');
    gzip.end();
    await once(gzip, 'end');
    return Buffer.concat(chunks);
  })();
  return bomb;
}

/** Answers with a gzip bomb: a small body that inflates to 300 MB of whitespace. */
export function gzipBomb(when: When = onVoucherList): Behaviour {
  return async ({ request, forward, response }) => {
    if (!when(request)) return forward();
    const body = await gzipBombBytes();
    response.writeHead(200, {
      'content-type': 'application/json',
      'content-encoding': 'gzip',
      'content-length': String(body.length),
    });
    response.end(body);
    return undefined;
  };
}

/** Resolves once `response` can take more, or is gone (a client that gave up). */
function drainedOrClosed(response: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      response.off('drain', done);
      response.off('close', done);
      resolve();
    };
    response.on('drain', done);
    response.on('close', done);
  });
}

/**
 * Answers with one valid page of `megabytes` (a single voucher with a huge note), sent in 1 MB chunks, with its
 * Content-Length or, with `chunked`, without one (so only the bytes read can tell its size).
 */
export function hugePage(megabytes: number, options: { when?: When; chunked?: boolean } = {}): Behaviour {
  const { when = onVoucherList, chunked = false } = options;
  return async ({ request, forward, response }) => {
    if (!when(request)) return forward();
    const cin7 = request.path.endsWith('/v1/Voucher');
    const head = Buffer.from(
      cin7
        ? '[{"code":"HUGE-1","description":"'
        : '{"data":{"total_items":1,"vouchers":[{"voucher_id":"huge","customer_id":"1","note":"',
    );
    const tail = Buffer.from(cin7 ? '"}]' : '"}]}}');
    const chunk = Buffer.alloc(1024 * 1024, 0x78);
    const length = head.length + megabytes * chunk.length + tail.length;
    response.writeHead(200, {
      'content-type': 'application/json',
      ...(chunked ? {} : { 'content-length': String(length) }),
    });
    response.write(head);
    for (let i = 0; i < megabytes && !response.destroyed; i++) {
      if (!response.write(chunk)) await drainedOrClosed(response);
    }
    if (!response.destroyed) response.end(tail);
    return undefined;
  };
}

/** Sends the status line and then one byte of a valid answer every `intervalMs`, never finishing in time. */
export function slowDrip(intervalMs = 500, when: When = onVoucherList): Behaviour {
  return async ({ request, forward, response }) => {
    if (!when(request)) return forward();
    response.writeHead(200, { 'content-type': 'application/json' });
    response.flushHeaders();
    const timer = setInterval(() => (response.destroyed ? clearInterval(timer) : response.write(' ')), intervalMs);
    response.on('close', () => clearInterval(timer));
    return undefined;
  };
}

/** Answers `status` with a Location pointing at `location` (another origin, say), keeping the request's path. */
export function redirectTo(
  location: (request: HostileRequest) => string,
  status = 302,
  when: When = onLogin,
): Behaviour {
  return ({ request, forward, response }) => {
    if (!when(request)) return forward();
    response.writeHead(status, { location: location(request), 'content-type': 'text/plain' });
    response.end('moved');
    return undefined;
  };
}

/**
 * Answers `status` (default 400) with an error whose message repeats the request — its body (a login's password)
 * and its headers (an Authorization header) — as careless servers do.
 */
export function echoRequest(status = 400, when: When = (r) => onLogin(r) || onVoucherList(r)): Behaviour {
  return ({ request, forward }) => {
    if (!when(request)) return forward();
    const echoed = `${request.method} ${request.path} ${request.body.toString('utf8')} authorization=${request.headers.authorization ?? ''}`;
    const json = {
      error: {
        title: 'Bad request',
        message: `Could not process: ${echoed}`,
        request: { body: request.body.toString('utf8'), headers: request.headers },
      },
    };
    return { status, headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify(json)), json };
  };
}
