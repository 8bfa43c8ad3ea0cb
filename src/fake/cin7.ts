import type { Cin7Voucher } from './cin7-data.ts';
import { parseFields, parseOrder, parseWhere } from './cin7-query.ts';
import { createCin7Store, type Cin7Store } from './cin7-store.ts';
import { startChurn, type ChurnOptions } from './churn.ts';
import type { FaultQueue } from './fault-queue.ts';
import {
  createFakeServer,
  type FakeRequest,
  type FakeResponse,
  type FakeRoute,
  type FakeStats,
  type PageFault,
} from './fake-server.ts';
import type { FakeRateWindow } from './rate-limiter.ts';

export interface Cin7Credentials {
  /** The API username of the account. */
  username: string;
  /** The key of one API connection, sent as the Basic password. */
  apiKey: string;
}

export interface FakeCin7Options {
  /** Same seed (and anchor and count) → same data. @default 1 */
  seed?: number;
  /** Vouchers generated at start. @default 1000 */
  count?: number;
  /** Added to every response. @default 0 */
  latencyMs?: number;
  /**
   * Rolling windows per account (the Basic username); over the limit → 429. null turns limits off.
   * @default 3 per second, 60 per minute, 5000 per day (what integrators report)
   */
  rateLimits?: FakeRateWindow[] | null;
  /** Send Retry-After on rate-limit 429s; Cin7 documents none. @default false */
  retryAfter?: boolean;
  /** Clock for createdDate stamps. @default Date.now */
  now?: () => number;
  /** The instant the generated history ends at. @default now() at creation */
  anchor?: number;
  /** Random changes every `everyMs`. @default off */
  churn?: ChurnOptions | null;
  /** @default {username: 'demo', apiKey: 'demo-key'} */
  credentials?: Cin7Credentials;
  /** Answer 403 to valid credentials, as for a connection without read permission on vouchers. @default false */
  forbidden?: boolean;
  /** Zone of the offsets in dates. @default 'Pacific/Auckland' */
  timezone?: string;
}

export interface FakeCin7 {
  /** Starts listening on 127.0.0.1 and returns the base URL (`http://127.0.0.1:<port>/api`). */
  start(port?: number): Promise<string>;
  stop(): Promise<void>;
  /** The base URL the service is configured with. Throws before start. */
  readonly url: string;
  readonly store: Cin7Store;
  readonly faults: FaultQueue;
  readonly stats: FakeStats;
  readonly credentials: Cin7Credentials;
}

export const CIN7_MAX_ROWS = 250;

const message = (status: number, text: string): FakeResponse => ({ status, json: { message: text } });

function usernameOf(request: FakeRequest): { username: string; password: string } | undefined {
  const match = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(request.headers.authorization ?? '');
  if (!match) return undefined;
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? undefined : { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

export function createFakeCin7(options: FakeCin7Options = {}): FakeCin7 {
  const now = options.now ?? Date.now;
  const credentials = options.credentials ?? { username: 'demo', apiKey: 'demo-key' };
  const inner = createCin7Store({
    seed: options.seed ?? 1,
    count: options.count ?? 1000,
    anchor: options.anchor ?? now(),
    zone: options.timezone ?? 'Pacific/Auckland',
    now,
  });
  const { store } = inner;

  async function vouchers(request: FakeRequest, pageFault: PageFault | undefined): Promise<FakeResponse> {
    const auth = usernameOf(request);
    if (!auth || auth.username !== credentials.username || auth.password !== credentials.apiKey) {
      return {
        ...message(401, 'Authorization has been denied for this request.'),
        headers: { 'www-authenticate': 'Basic realm="Cin7"' },
      };
    }
    if (options.forbidden) return message(403, 'This API connection has no permission to read vouchers.');
    // ASP.NET binds query parameters whatever their case.
    const param = (name: string) => {
      for (const [key, value] of request.query) if (key.toLowerCase() === name) return value;
      return undefined;
    };
    const where = parseWhere(param('where') ?? '');
    if (!where.ok) return message(400, where.message);
    const order = parseOrder(param('order') ?? '');
    if (!order.ok) return message(400, order.message);
    const fields = parseFields(param('fields') ?? '');
    if (!fields.ok) return message(400, fields.message);
    const page = Number(param('page') ?? 1);
    if (!Number.isInteger(page) || page < 1) return message(400, 'page must be a whole number from 1');
    const askedRows = Number(param('rows') ?? 50);
    if (!Number.isInteger(askedRows) || askedRows < 1) return message(400, 'rows must be a whole number from 1');
    // Above the maximum the page is silently cut to 250 rows, as integrators report: a client that takes
    // "fewer rows than asked" for the last page stops early.
    const rows = Math.min(askedRows, CIN7_MAX_ROWS);
    const code = param('code');
    if (code === undefined) await inner.hooks.run(request.path, request.query);

    const by = Math.max(1, pageFault?.by ?? Math.ceil(rows / 2));
    const size =
      pageFault?.kind === 'oversize' ? rows + by : pageFault?.kind === 'undersize' ? Math.max(0, rows - by) : rows;
    const records = inner.list({ conditions: where.value, order: order.value, code, offset: (page - 1) * rows, size });
    const keys = fields.value;
    const body = keys
      ? records.map((r) => Object.fromEntries(keys.filter((k) => k in r).map((k) => [k, r[k]])))
      : records;
    return { status: 200, json: body };
  }

  function route(request: FakeRequest): FakeRoute {
    const account = usernameOf(request)?.username ?? 'anonymous';
    const path = request.path.toLowerCase().replace(/\/+$/, '');
    if (path === '/api/v1/voucher') {
      if (request.method !== 'GET') {
        return {
          endpoint: 'other',
          kind: 'other',
          account,
          handle: () => message(405, `The requested resource does not support http method '${request.method}'.`),
        };
      }
      const lookup = [...request.query.keys()].some((key) => key.toLowerCase() === 'code');
      return {
        endpoint: 'GET /v1/Voucher',
        kind: lookup ? 'get' : 'list',
        account,
        handle: (pageFault) => vouchers(request, pageFault),
      };
    }
    return {
      endpoint: 'other',
      kind: 'other',
      account,
      handle: () => message(404, `No HTTP resource was found that matches the request URI '${request.path}'.`),
    };
  }

  const server = createFakeServer({
    route,
    rateLimits:
      options.rateLimits === undefined
        ? [
            { max: 3, windowMs: 1000 },
            { max: 60, windowMs: 60_000 },
            { max: 5000, windowMs: 86_400_000 },
          ]
        : options.rateLimits,
    retryAfter: options.retryAfter ?? false,
    latencyMs: options.latencyMs ?? 0,
    errorBody: (_status, title, detail) => ({ message: `${title}: ${detail}` }),
  });
  let stopChurn: (() => void) | undefined;

  return {
    async start(port) {
      const origin = await server.start(port);
      if (options.churn && !stopChurn) stopChurn = startChurn(options.churn, (changes) => store.churn(changes));
      return `${origin}/api`;
    },
    async stop() {
      stopChurn?.();
      stopChurn = undefined;
      await server.stop();
    },
    get url() {
      return `${server.origin}/api`;
    },
    store,
    faults: server.faults,
    stats: server.stats,
    credentials,
  };
}

export type { Cin7Voucher };
