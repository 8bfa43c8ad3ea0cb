import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleepFor } from 'node:timers/promises';
import { createFaultQueue, type Fault, type FaultQueue, type RequestKind } from './fault-queue.ts';
import { createRateLimiter, createWindowPeaks, type FakeRateWindow } from './rate-limiter.ts';

/** One HTTP request, read in full, as the fakes' routers see it. */
export interface FakeRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface FakeResponse {
  status: number;
  /** Serialized as the JSON body; ignored when `text` is set. */
  json?: unknown;
  text?: string;
  contentType?: string;
  headers?: Record<string, string>;
}

/** Asks a list handler for a page with more or fewer records than requested. */
export type PageFault = Extract<Fault, { kind: 'oversize' | 'undersize' }>;

/** What a router decides about a request before anything is served. */
export interface FakeRoute {
  /** Label in `stats.byEndpoint`, such as `GET /vouchers`. */
  endpoint: string;
  kind: RequestKind;
  /** Whose rate limits the request counts against. */
  account: string;
  handle(pageFault?: PageFault): FakeResponse | Promise<FakeResponse>;
}

export interface WindowPeak {
  windowMs: number;
  limit: number;
  /** The most requests that arrived within any rolling window of this length. */
  peak: number;
}

export interface FakeStats {
  requests: number;
  byEndpoint: Record<string, number>;
  /** Responses per HTTP status, keyed by the status as a string. */
  byStatus: Record<string, number>;
  /** 429s sent because a configured limit was hit (injected 429 faults are not counted). */
  rateLimited: number;
  /** Requests that arrived when a limit was already full; always equal to `rateLimited`. */
  limitViolations: number;
  /** One entry per configured rate window, in the order configured. */
  readonly maxInWindow: WindowPeak[];
  reset(): void;
}

export interface FakeServerOptions {
  route(request: FakeRequest): FakeRoute;
  rateLimits: readonly FakeRateWindow[] | null;
  /** Send Retry-After (whole seconds) on rate-limit 429s. */
  retryAfter: boolean;
  /** Added before every response. */
  latencyMs: number;
  /** The fake's own JSON error body for a status. */
  errorBody(status: number, title: string, detail: string): unknown;
}

export interface FakeServer {
  start(port?: number): Promise<string>;
  stop(): Promise<void>;
  /** `http://127.0.0.1:<port>` once started. */
  readonly origin: string;
  readonly faults: FaultQueue;
  readonly stats: FakeStats;
  /** Sleeps unless the server stops meanwhile (then rejects). */
  sleep(ms: number): Promise<void>;
}

const MAX_BODY = 1_000_000;
const HTML_PAGE =
  '<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n' +
  '<body><h1>Bad Gateway</h1><p>The upstream server returned an invalid response.</p></body></html>\n';

async function readBody(req: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The HTTP plumbing both fakes share: stats, rate limits, faults, latency. */
export function createFakeServer(options: FakeServerOptions): FakeServer {
  const windows = options.rateLimits ?? [];
  const limiter = options.rateLimits ? createRateLimiter(windows) : undefined;
  const peaks = createWindowPeaks(windows);
  const faults = createFaultQueue();
  let stopping = new AbortController();
  let origin: string | undefined;

  const stats: FakeStats = {
    requests: 0,
    byEndpoint: {},
    byStatus: {},
    rateLimited: 0,
    limitViolations: 0,
    get maxInWindow() {
      return peaks.peaks();
    },
    reset() {
      stats.requests = 0;
      stats.byEndpoint = {};
      stats.byStatus = {};
      stats.rateLimited = 0;
      stats.limitViolations = 0;
      peaks.reset();
    },
  };

  const sleep = async (ms: number) => {
    if (ms > 0) await sleepFor(ms, undefined, { signal: stopping.signal });
  };
  const jsonError = (status: number, title: string, detail: string): FakeResponse => ({
    status,
    json: options.errorBody(status, title, detail),
  });

  async function serve(route: FakeRoute, fault: Fault | undefined): Promise<FakeResponse> {
    switch (fault?.kind) {
      case undefined:
        return route.handle();
      case 'status': {
        const headers: Record<string, string> =
          fault.retryAfter === undefined ? {} : { 'retry-after': String(fault.retryAfter) };
        return { ...jsonError(fault.status, 'Injected failure', `Injected status ${fault.status}`), headers };
      }
      case 'html':
        return { status: fault.status ?? 200, text: HTML_PAGE, contentType: 'text/html; charset=utf-8' };
      case 'empty':
        return { status: 200, text: '', contentType: 'application/json' };
      case 'delay':
        await sleep(fault.ms);
        return route.handle();
      case 'truncated': {
        const normal = await route.handle();
        const text = normal.text ?? JSON.stringify(normal.json ?? null);
        return { status: 200, text: text.slice(0, Math.floor(text.length / 2)), contentType: 'application/json' };
      }
      case 'oversize':
      case 'undersize':
        return route.handle(fault);
    }
  }

  function send(res: ServerResponse, response: FakeResponse) {
    stats.byStatus[response.status] = (stats.byStatus[response.status] ?? 0) + 1;
    if (res.destroyed || res.writableEnded) return;
    const body = response.text ?? (response.json === undefined ? '' : JSON.stringify(response.json));
    res.writeHead(response.status, {
      'content-type': response.contentType ?? 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      ...response.headers,
    });
    res.end(body);
  }

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const arrival = performance.now();
    const body = await readBody(req);
    const url = new URL(req.url ?? '/', 'http://fake.invalid');
    const route = options.route({
      method: req.method ?? 'GET',
      path: url.pathname,
      query: url.searchParams,
      headers: req.headers,
      body: body ?? '',
    });
    stats.requests++;
    stats.byEndpoint[route.endpoint] = (stats.byEndpoint[route.endpoint] ?? 0) + 1;
    peaks.observe(route.account, arrival);

    let response: FakeResponse;
    const admission = limiter ? limiter.admit(route.account, arrival) : { allowed: true as const };
    if (!admission.allowed) {
      stats.rateLimited++;
      stats.limitViolations++;
      const seconds = Math.max(1, Math.ceil(admission.retryAfterMs / 1000));
      response = jsonError(429, 'Too many requests', 'More than the resource limit');
      if (options.retryAfter) response.headers = { 'retry-after': String(seconds) };
    } else if (body === undefined) {
      response = jsonError(413, 'Payload too large', 'The request body is too large');
    } else {
      response = await serve(route, faults.take(route.kind));
    }
    await sleep(options.latencyMs);
    send(res, response);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (stopping.signal.aborted) {
        res.destroy();
        return;
      }
      // A bug in a fake must show up in the test that hit it, not vanish: answer 500 with the reason.
      send(res, jsonError(500, 'Fake server error', error instanceof Error ? error.message : String(error)));
    });
  });

  return {
    async start(port = 0) {
      if (origin) return origin;
      stopping = new AbortController();
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, '127.0.0.1', () => {
          server.off('error', reject);
          resolve();
        });
      });
      origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      return origin;
    },
    async stop() {
      if (!origin) return;
      origin = undefined;
      stopping.abort();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
    get origin() {
      if (!origin) throw new Error('the fake server is not started');
      return origin;
    },
    faults,
    stats,
    sleep,
  };
}
