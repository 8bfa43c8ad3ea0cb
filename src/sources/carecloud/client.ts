/**
 * CareCloud Enterprise API client: the voucher endpoints checked at the page level, with the bearer token of
 * the session (session.ts), renewed once when CareCloud refuses it.
 * Records are not validated here; the stream's `map` does that.
 */
import { FatalSourceError, InvalidParamsError, PageSizeRefusedError, RetriableSourceError } from '../../errors.ts';
import type { CallOptions, HttpContext } from '../../http/call-options.ts';
import { createHttpClient } from '../../http/create-http-client.ts';
import { systemClock, type ClientDependencies, type Clock } from '../../types.ts';
import type { CareCloudConfig } from './config.ts';
import { careCloudErrorDetails, careCloudInvalidParams, maximumNamed } from './error-details.ts';
import { createTokenSession } from './session.ts';

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
  /** One customer's vouchers; null when CareCloud answers 404 (it knows no such customer). */
  listCustomerVouchers(
    customerId: string,
    params: CareCloudListParams,
    call?: CallOptions,
  ): Promise<CareCloudVoucherPage | null>;
}

export interface CareCloudClientDependencies extends ClientDependencies {
  /** Decides when the token is due for renewal (default: the system clock). */
  clock?: Clock;
  /** First retry backoff in ms (default 1000, see createHttpClient). */
  backoffBaseMs?: number;
}

function toPage(body: unknown, what: string): CareCloudVoucherPage {
  const data = (body as { data?: unknown } | null)?.data;
  if (!data || typeof data !== 'object')
    throw new RetriableSourceError(`CareCloud answer to ${what} has no data object`);
  const { vouchers, total_items: total } = data as { vouchers?: unknown; total_items?: unknown };
  if (!Array.isArray(vouchers)) {
    throw new RetriableSourceError(
      `CareCloud answer to ${what} has no data.vouchers array (found ${vouchers === null ? 'null' : typeof vouchers})`,
    );
  }
  const totalItems =
    typeof total === 'number' || (typeof total === 'string' && total.trim() !== '') ? Number(total) : NaN;
  return { vouchers, totalItems: Number.isFinite(totalItems) ? totalItems : null };
}

/**
 * A 400 naming `count` as a PageSizeRefusedError (CareCloud documents no maximum): a scan that finds its page size at
 * run time asks for fewer; with CARECLOUD_PAGE_SIZE set to a number, the message says which setting to change.
 * Any other error is returned as it is.
 */
function refusedCount(error: unknown, count: number, config: CareCloudConfig): unknown {
  const param = error instanceof InvalidParamsError ? error.params.find((p) => p.name === 'count') : undefined;
  if (param === undefined) return error;
  const hint = maximumNamed(param.message, count);
  const advice = config.findPageSize
    ? ''
    : ` (CARECLOUD_PAGE_SIZE=${config.pageSize} asks for more records a page than CareCloud accepts: set it to ${hint ?? 'a smaller number'}, or to auto to find the largest it accepts)`;
  return new PageSizeRefusedError(`${(error as Error).message}${advice}`, count, hint, { cause: error });
}

export function createCareCloudClient(config: CareCloudConfig, deps: CareCloudClientDependencies): CareCloudClient {
  const logger = deps.logger.child({ source: 'carecloud' });
  const http = createHttpClient({
    source: 'carecloud',
    baseUrl: config.baseUrl,
    baseUrlSetting: 'CARECLOUD_BASE_URL',
    http: deps.http,
    limiter: deps.limiter,
    logger: deps.logger,
    headers: { 'accept-language': 'en-gb' },
    backoffBaseMs: deps.backoffBaseMs,
    errorDetails: careCloudErrorDetails,
    invalidParamsOf: careCloudInvalidParams,
  });
  const session = createTokenSession({ config, http, logger, clock: deps.clock ?? systemClock });

  async function get(
    path: string,
    params: Record<string, unknown>,
    call: CallOptions,
    quiet: number[] = [],
  ): Promise<unknown> {
    const searchParams = Object.fromEntries(Object.entries(params).filter(([, v]) => v !== undefined)) as Record<
      string,
      string | number | boolean
    >;
    const send = async (token: string) =>
      (
        await http.get(path, {
          searchParams,
          headers: { authorization: `Bearer ${token}` },
          signal: call.signal,
          context: { observer: call.observer, share: call.share, quietStatuses: [401, ...quiet] } satisfies HttpContext,
        })
      ).body;
    const token = await session.token(call);
    try {
      return await send(token);
    } catch (error) {
      if (!(error instanceof FatalSourceError && error.status === 401)) throw error;
    }
    logger.info('CareCloud refused the token; logging in again');
    try {
      return await send(await session.token(call, token));
    } catch (error) {
      if (!(error instanceof FatalSourceError && error.status === 401)) throw error;
      throw new FatalSourceError(
        `CareCloud rejected a freshly issued token for GET ${path.split('/')[0]}: the user may lack access to it`,
        401,
        {
          cause: error,
        },
      );
    }
  }

  return {
    async listVouchers(params, call = {}) {
      let body: unknown;
      try {
        body = await get('vouchers', params, call);
      } catch (error) {
        throw refusedCount(error, params.count, config);
      }
      return toPage(body, 'GET vouchers');
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
      if (!data || typeof data !== 'object')
        throw new RetriableSourceError('CareCloud answer to GET vouchers/{id} has no data object');
      return data;
    },

    async listCustomerVouchers(customerId, params, call = {}) {
      let body: unknown;
      try {
        body = await get(`customers/${encodeURIComponent(customerId)}/vouchers`, params, call, [404]);
      } catch (error) {
        if (error instanceof FatalSourceError && error.status === 404) return null;
        throw refusedCount(error, params.count, config);
      }
      return toPage(body, 'GET customers/{id}/vouchers');
    },
  };
}
