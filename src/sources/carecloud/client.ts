/**
 * CareCloud Enterprise API client: bearer-token login, and the voucher endpoints checked at the page level.
 * Records are not validated here; the stream's `map` does that.
 */
import { DateTime } from 'luxon';
import type { CareCloudConfig } from '../../config.ts';
import { AbortedError, FatalSourceError, RetriableSourceError } from '../../errors.ts';
import type { CallOptions, HttpContext } from '../../http/call-options.ts';
import { createHttpClient } from '../../http/create-http-client.ts';
import { registerSecret } from '../../secrets.ts';
import { systemClock, type ClientDependencies, type Clock } from '../../types.ts';

export type CareCloudListParams = {
  count: number;
  offset: number;
  sort_field?: string;
  sort_direction?: 'ASC' | 'DESC';
  /** Filters such as `customer_id`, `code`, `is_valid`; undefined ones are not sent. */
  [filter: string]: string | number | boolean | undefined;
};

export interface CareCloudVoucherPage {
  vouchers: unknown[];
  /** `total_items`: all matches across pages; null when the answer lacks it. */
  totalItems: number | null;
}

export interface CareCloudClient {
  listVouchers(params: CareCloudListParams, call?: CallOptions): Promise<CareCloudVoucherPage>;
  /** null when CareCloud answers 404. */
  getVoucher(id: string, call?: CallOptions): Promise<unknown>;
  listCustomerVouchers(customerId: string, params: CareCloudListParams, call?: CallOptions): Promise<CareCloudVoucherPage>;
}

export interface CareCloudClientDependencies extends ClientDependencies {
  /** Decides when the token is due for renewal (default: the system clock). */
  clock?: Clock;
  /** First retry backoff in ms (default 1000, see createHttpClient). */
  backoffBaseMs?: number;
}

// Renew a minute before `valid_to`: the project's clock and ours differ a little, and a request takes time.
const RENEW_BEFORE_MS = 60_000;

/** `valid_to` is a local time of the project (`YYYY-MM-DD HH:MM:SS`, sometimes ISO) without offset. */
function parseLocalTime(value: unknown, zone: string): number | null {
  if (typeof value !== 'string') return null;
  const sql = DateTime.fromFormat(value.trim(), 'yyyy-MM-dd HH:mm:ss', { zone });
  const parsed = sql.isValid ? sql : DateTime.fromISO(value.trim(), { zone });
  return parsed.isValid ? parsed.toMillis() : null;
}

function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new AbortedError('Stopped waiting for the CareCloud login', { cause: signal.reason }));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

function toPage(body: unknown, what: string): CareCloudVoucherPage {
  const data = (body as { data?: unknown } | null)?.data;
  if (!data || typeof data !== 'object') throw new RetriableSourceError(`CareCloud answer to ${what} has no data object`);
  const { vouchers, total_items: total } = data as { vouchers?: unknown; total_items?: unknown };
  if (!Array.isArray(vouchers)) {
    throw new RetriableSourceError(`CareCloud answer to ${what} has no data.vouchers array (found ${vouchers === null ? 'null' : typeof vouchers})`);
  }
  const totalItems = typeof total === 'number' || (typeof total === 'string' && total.trim() !== '') ? Number(total) : NaN;
  return { vouchers, totalItems: Number.isFinite(totalItems) ? totalItems : null };
}

export function createCareCloudClient(config: CareCloudConfig, deps: CareCloudClientDependencies): CareCloudClient {
  const logger = deps.logger.child({ source: 'carecloud' });
  const clock = deps.clock ?? systemClock;
  const http = createHttpClient({
    source: 'carecloud',
    baseUrl: config.baseUrl,
    baseUrlSetting: 'CARECLOUD_BASE_URL',
    http: deps.http,
    limiter: deps.limiter,
    logger: deps.logger,
    headers: { 'accept-language': 'en-gb' },
    backoffBaseMs: deps.backoffBaseMs,
  });
  let session: { token: string; renewAt: number } | null = null;
  let loggingIn: Promise<string> | null = null;

  async function login(call: CallOptions): Promise<string> {
    let body: unknown;
    try {
      ({ body } = await http.post('users/actions/login', {
        json: { user_external_application_id: config.appId.reveal(), login: config.login, password: config.password.reveal() },
        retry: { methods: ['POST'] }, // logging in twice is harmless
        context: { observer: call.observer } satisfies HttpContext,
      }));
    } catch (error) {
      if (error instanceof FatalSourceError && (error.status === 401 || error.status === 403)) {
        throw new FatalSourceError(
          `CareCloud rejected the login credentials (${error.status}): check CARECLOUD_LOGIN, CARECLOUD_PASSWORD and CARECLOUD_APP_ID`,
          error.status,
          { cause: error },
        );
      }
      throw error;
    }
    const data = (body as { data?: { bearer_token?: unknown; valid_to?: unknown } } | null)?.data;
    if (typeof data?.bearer_token !== 'string' || data.bearer_token === '') {
      throw new RetriableSourceError('CareCloud login answer has no data.bearer_token');
    }
    // Scrubbed from every text from now on, like the configured secrets: a server may echo it in an error body.
    registerSecret(data.bearer_token);
    const validTo = parseLocalTime(data.valid_to, config.timezone);
    if (validTo === null) logger.warn('CareCloud login answer has no readable valid_to; the token is kept until CareCloud rejects it');
    session = { token: data.bearer_token, renewAt: validTo === null ? Number.POSITIVE_INFINITY : validTo - RENEW_BEFORE_MS };
    logger.info({ validTo: validTo === null ? null : new Date(validTo).toISOString() }, 'Logged in to CareCloud');
    return data.bearer_token;
  }

  /** The current token, logging in when there is none or it is due; concurrent callers share one login. */
  function currentToken(call: CallOptions, stale?: string): Promise<string> {
    if (session && (session.token === stale || clock.now().getTime() >= session.renewAt)) session = null;
    if (session) return Promise.resolve(session.token);
    // The login is shared, so no caller's signal cancels it; each caller can still stop waiting for it.
    loggingIn ??= login(call).finally(() => {
      loggingIn = null;
    });
    return untilAborted(loggingIn, call.signal);
  }

  async function get(path: string, params: Record<string, unknown>, call: CallOptions, quiet: number[] = []): Promise<unknown> {
    const searchParams = Object.fromEntries(Object.entries(params).filter(([, v]) => v !== undefined)) as Record<string, string | number | boolean>;
    const send = async (token: string) =>
      (
        await http.get(path, {
          searchParams,
          headers: { authorization: `Bearer ${token}` },
          signal: call.signal,
          context: { observer: call.observer, quietStatuses: [401, ...quiet] } satisfies HttpContext,
        })
      ).body;
    const token = await currentToken(call);
    try {
      return await send(token);
    } catch (error) {
      if (!(error instanceof FatalSourceError && error.status === 401)) throw error;
    }
    logger.info('CareCloud refused the token; logging in again');
    try {
      return await send(await currentToken(call, token));
    } catch (error) {
      if (!(error instanceof FatalSourceError && error.status === 401)) throw error;
      throw new FatalSourceError(`CareCloud rejected a freshly issued token for GET ${path.split('/')[0]}: the user may lack access to it`, 401, {
        cause: error,
      });
    }
  }

  return {
    async listVouchers(params, call = {}) {
      return toPage(await get('vouchers', params, call), 'GET vouchers');
    },

    async getVoucher(id, call = {}) {
      let body: unknown;
      try {
        body = await get(`vouchers/${encodeURIComponent(id)}`, {}, call, [404]);
      } catch (error) {
        if (error instanceof FatalSourceError && error.status === 404) return null;
        throw error;
      }
      const data = (body as { data?: unknown } | null)?.data;
      if (!data || typeof data !== 'object') throw new RetriableSourceError('CareCloud answer to GET vouchers/{id} has no data object');
      return data;
    },

    async listCustomerVouchers(customerId, params, call = {}) {
      return toPage(await get(`customers/${encodeURIComponent(customerId)}/vouchers`, params, call), 'GET customers/{id}/vouchers');
    },
  };
}
