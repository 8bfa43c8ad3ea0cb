import { randomBytes } from 'node:crypto';
import type { CareCloudVoucher } from './carecloud-data.ts';
import { parseVoucherQuery, type InvalidParam } from './carecloud-query.ts';
import { createCareCloudStore, type CareCloudStore } from './carecloud-store.ts';
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

export const CARECLOUD_BASE_PATH = '/webservice/rest-api/enterprise-interface/v1.0';

export interface CareCloudCredentials {
  login: string;
  password: string;
  /** Sent as `user_external_application_id`. */
  appId: string;
}

export interface FakeCareCloudOptions {
  /** Same seed (and anchor and count) → same data. @default 1 */
  seed?: number;
  /** Vouchers generated at start, a few service vouchers included. @default 1000 */
  count?: number;
  /** Added to every response. @default 0 */
  latencyMs?: number;
  /**
   * Rolling windows per account; over the limit → 429. null turns limits off. CareCloud publishes no numbers.
   * @default [{max: 10, windowMs: 1000}, {max: 300, windowMs: 60000}]
   */
  rateLimits?: FakeRateWindow[] | null;
  /** Send Retry-After (seconds) on rate-limit 429s. @default true */
  retryAfter?: boolean;
  /** Clock for stamps and token expiry. @default Date.now */
  now?: () => number;
  /** The instant the generated history ends at. @default now() at creation */
  anchor?: number;
  /** Random changes every `everyMs`. @default off */
  churn?: ChurnOptions | null;
  /** @default {login: 'demo', password: 'demo-password', appId: 'demo-app'} */
  credentials?: CareCloudCredentials;
  /** The project's IANA zone: every datetime is local time there. @default 'Europe/Prague' */
  timezone?: string;
  /** @default 7 hours */
  tokenTtlMs?: number;
  /** Largest `count` accepted; above → 400. @default 1000 */
  maxCount?: number;
}

export interface FakeCareCloud {
  /** Starts listening on 127.0.0.1 and returns the base URL (with the `/v1.0` path). */
  start(port?: number): Promise<string>;
  stop(): Promise<void>;
  /** The base URL the service is configured with. Throws before start. */
  readonly url: string;
  readonly store: CareCloudStore;
  readonly faults: FaultQueue;
  readonly stats: FakeStats;
  readonly credentials: CareCloudCredentials;
  readonly timezone: string;
  /** Largest `count` accepted, above → 400 naming it; settable while running (an API that lowers its maximum). */
  maxCount: number;
}

const EXCEPTIONS: Record<number, string> = {
  400: 'bad_request_exception',
  401: 'unauthorized_exception',
  403: 'forbidden_exception',
  404: 'not_found_exception',
  405: 'method_not_allowed_exception',
  429: 'too_many_requests_exception',
  500: 'internal_server_error_exception',
  503: 'service_unavailable_exception',
};

function errorBody(status: number, title: string, detail: string, errorData: Record<string, unknown> = {}) {
  return {
    error: {
      type: 'about:blank',
      exception: EXCEPTIONS[status] ?? 'error_exception',
      title,
      detail,
      error_data: errorData,
    },
  };
}

const fail = (status: number, title: string, detail: string, errorData?: Record<string, unknown>): FakeResponse => ({
  status,
  json: errorBody(status, title, detail, errorData),
});
const badRequest = (invalid: InvalidParam[]) =>
  fail(400, 'Bad request', invalid.map((p) => p.message).join('; '), { invalid_params: invalid });
const notFound = (resource: string, id: string) =>
  fail(404, 'Not found', `Resource ${resource} ${id} was not found`, { resource_name: resource, resource_id: id });

export function createFakeCareCloud(options: FakeCareCloudOptions = {}): FakeCareCloud {
  const now = options.now ?? Date.now;
  const credentials = options.credentials ?? { login: 'demo', password: 'demo-password', appId: 'demo-app' };
  const timezone = options.timezone ?? 'Europe/Prague';
  const tokenTtlMs = options.tokenTtlMs ?? 7 * 3_600_000;
  let maxCount = options.maxCount ?? 1000;
  const inner = createCareCloudStore({
    seed: options.seed ?? 1,
    count: options.count ?? 1000,
    anchor: options.anchor ?? now(),
    zone: timezone,
    now,
  });
  const { store, data } = inner;
  const sessions = new Map<string, { login: string; expiresAt: number }>();
  inner.setTokenExpirer(() => {
    for (const session of sessions.values()) session.expiresAt = Number.NEGATIVE_INFINITY;
  });

  const render = (record: Record<string, unknown>, withStores: boolean) => {
    const reward = record.reward as Record<string, unknown> | undefined;
    const stores = withStores ? data.storesOf(reward?.reward_id) : undefined;
    return stores && reward ? { ...record, reward: { ...reward, store_list: stores } } : record;
  };

  function login(request: FakeRequest): FakeResponse {
    let body: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(request.body);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
      body = parsed as Record<string, unknown>;
    } catch {
      return badRequest([
        { name: 'body', reason: 'invalid_value_format', value: '', message: 'The body must be a JSON object' },
      ]);
    }
    const fields = ['user_external_application_id', 'login', 'password'] as const;
    const missing = fields.filter((f) => typeof body[f] !== 'string' || body[f] === '');
    if (missing.length > 0) {
      return badRequest(
        missing.map((name) => ({ name, reason: 'required', value: '', message: `${name} is required` })),
      );
    }
    // The spec lists no 401 for login; 403 ("the client does not exist") is the documented answer we use.
    if (
      body.user_external_application_id !== credentials.appId ||
      body.login !== credentials.login ||
      body.password !== credentials.password
    ) {
      return fail(403, 'Forbidden', 'Invalid login, password or external application', { interface: 'Enterprise' });
    }
    for (const [token, session] of sessions) if (session.expiresAt <= now()) sessions.delete(token);
    const token = randomBytes(20).toString('hex');
    const expiresAt = now() + tokenTtlMs;
    sessions.set(token, { login: credentials.login, expiresAt });
    return {
      status: 200,
      json: {
        data: {
          bearer_token: token,
          valid_to: data.wallString(expiresAt),
          user: {
            user_id: data.customerIds.encode(0x7fff_ffff),
            login: credentials.login,
            first_name: 'Demo',
            last_name: 'Integration',
            email: 'integration@example.com',
            user_role_ids: [data.customerIds.encode(0x7fff_fffe)],
            store_id: data.stores[0]?.store_id,
            last_login: store.nowLocal(),
          },
        },
      },
    };
  }

  const bearerOf = (request: FakeRequest) => /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '')?.[1];
  const unauthorized = (request: FakeRequest): FakeResponse | undefined => {
    const token = bearerOf(request);
    const session = token === undefined ? undefined : sessions.get(token);
    if (!session)
      return fail(401, 'Unauthorized', token === undefined ? 'Missing bearer token' : 'Invalid bearer token');
    if (session.expiresAt <= now()) return fail(401, 'Unauthorized', 'The bearer token has expired');
    return undefined;
  };

  async function listVouchers(
    request: FakeRequest,
    pageFault: PageFault | undefined,
    customerId?: string,
  ): Promise<FakeResponse> {
    const denied = unauthorized(request);
    if (denied) return denied;
    const parsed = parseVoucherQuery(request.query, maxCount);
    if (!parsed.ok) return badRequest(parsed.invalid);
    if (customerId !== undefined && !inner.customerExists(customerId)) return notFound('customers', customerId);
    await inner.hooks.run(request.path, request.query);
    const { query } = parsed;
    const by = Math.max(1, pageFault?.by ?? Math.ceil(query.count / 2));
    const pageSize =
      pageFault?.kind === 'oversize'
        ? query.count + by
        : pageFault?.kind === 'undersize'
          ? Math.max(0, query.count - by)
          : query.count;
    const { records, total } = inner.list(query, pageSize, customerId);
    const vouchers = records.map((r) => render(r, !query.withoutStores));
    return { status: 200, json: { data: { vouchers, total_items: total } } };
  }

  function getVoucher(request: FakeRequest, voucherId: string): FakeResponse {
    const denied = unauthorized(request);
    if (denied) return denied;
    const record = inner.find(voucherId);
    return record ? { status: 200, json: { data: render(record, false) } } : notFound('vouchers', voucherId);
  }

  function route(request: FakeRequest): FakeRoute {
    const path = request.path.startsWith(`${CARECLOUD_BASE_PATH}/`)
      ? request.path.slice(CARECLOUD_BASE_PATH.length)
      : undefined;
    const token = bearerOf(request);
    const account = (token !== undefined ? sessions.get(token)?.login : undefined) ?? 'anonymous';
    const other = (response: () => FakeResponse): FakeRoute => ({
      endpoint: 'other',
      kind: 'other',
      account,
      handle: response,
    });
    const onlyMethod = (
      method: string,
      endpoint: string,
      kind: FakeRoute['kind'],
      handle: FakeRoute['handle'],
      who = account,
    ): FakeRoute =>
      request.method === method
        ? { endpoint, kind, account: who, handle }
        : other(() => fail(405, 'Method not allowed', `Use ${method}`, { http_method: request.method }));

    if (path === '/users/actions/login') {
      let who = 'anonymous';
      try {
        who = String((JSON.parse(request.body) as { login?: unknown }).login ?? who);
      } catch {
        // An unreadable body is answered with 400 by the handler; it still counts against someone's limit.
      }
      return onlyMethod('POST', 'POST /users/actions/login', 'login', () => login(request), who);
    }
    if (path === '/vouchers') {
      return onlyMethod('GET', 'GET /vouchers', 'list', (pageFault) => listVouchers(request, pageFault));
    }
    const single = path && /^\/vouchers\/([^/]+)$/.exec(path);
    if (single) {
      return onlyMethod('GET', 'GET /vouchers/{voucher_id}', 'get', () =>
        getVoucher(request, decodeURIComponent(single[1]!)),
      );
    }
    const customer = path && /^\/customers\/([^/]+)\/vouchers$/.exec(path);
    if (customer) {
      const customerId = decodeURIComponent(customer[1]!);
      return onlyMethod('GET', 'GET /customers/{customer_id}/vouchers', 'list', (pageFault) =>
        listVouchers(request, pageFault, customerId),
      );
    }
    return other(() => notFound(path?.split('/')[1] || 'resource', request.path));
  }

  const server = createFakeServer({
    route,
    rateLimits:
      options.rateLimits === undefined
        ? [
            { max: 10, windowMs: 1000 },
            { max: 300, windowMs: 60_000 },
          ]
        : options.rateLimits,
    retryAfter: options.retryAfter ?? true,
    latencyMs: options.latencyMs ?? 0,
    errorBody: (status, title, detail) => errorBody(status, title, detail),
  });
  let stopChurn: (() => void) | undefined;

  return {
    async start(port) {
      const origin = await server.start(port);
      if (options.churn && !stopChurn) stopChurn = startChurn(options.churn, (changes) => store.churn(changes));
      return origin + CARECLOUD_BASE_PATH;
    },
    async stop() {
      stopChurn?.();
      stopChurn = undefined;
      await server.stop();
    },
    get url() {
      return server.origin + CARECLOUD_BASE_PATH;
    },
    store,
    faults: server.faults,
    stats: server.stats,
    credentials,
    timezone,
    get maxCount() {
      return maxCount;
    },
    set maxCount(value: number) {
      maxCount = value;
    },
  };
}

export type { CareCloudVoucher };
