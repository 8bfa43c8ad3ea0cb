/**
 * Cin7 Omni API v1 client: HTTP Basic on every request, `GET v1/Voucher`, bare JSON arrays.
 * Records are not validated here; the stream's `map` does that.
 */
import type { Cin7Config } from './config.ts';
import { FatalSourceError, RetriableSourceError } from '../../errors.ts';
import type { CallOptions, HttpContext } from '../../http/call-options.ts';
import { createHttpClient } from '../../http/create-http-client.ts';
import { registerSecret } from '../../secrets.ts';
import type { ClientDependencies } from '../../types.ts';

export interface Cin7ListParams {
  /** A where clause built by the caller from validated dates and known field names only. */
  where?: string;
  /** e.g. `CreatedDate ASC`. */
  order?: string;
  /** Starts at 1. */
  page: number;
  /** At most 250. */
  rows: number;
  /** Fields to return; all when absent. */
  fields?: string | string[];
}

export interface Cin7Client {
  listVouchers(params: Cin7ListParams, call?: CallOptions): Promise<unknown[]>;
  /** The vouchers whose code matches; an empty array when none does. */
  findByCode(code: string, call?: CallOptions): Promise<unknown[]>;
}

export interface Cin7ClientDependencies extends ClientDependencies {
  /** First retry backoff in ms (default 1000, see createHttpClient). */
  backoffBaseMs?: number;
}

export function createCin7Client(config: Cin7Config, deps: Cin7ClientDependencies): Cin7Client {
  const credentials = Buffer.from(`${config.username}:${config.apiKey.reveal()}`).toString('base64');
  // The header carries the key in base64, a form of it that scrubbing the key alone would miss.
  registerSecret(credentials);
  const http = createHttpClient({
    source: 'cin7',
    baseUrl: config.baseUrl,
    baseUrlSetting: 'CIN7_BASE_URL',
    http: deps.http,
    limiter: deps.limiter,
    logger: deps.logger,
    headers: { authorization: `Basic ${credentials}` },
    backoffBaseMs: deps.backoffBaseMs,
  });

  async function getVouchers(searchParams: Record<string, string | number>, call: CallOptions): Promise<unknown[]> {
    let body: unknown;
    try {
      ({ body } = await http.get('v1/Voucher', {
        searchParams,
        signal: call.signal,
        context: { observer: call.observer, share: call.share } satisfies HttpContext,
      }));
    } catch (error) {
      if (error instanceof FatalSourceError && error.status === 401) {
        throw new FatalSourceError(
          'Cin7 rejected the API username or key (401): check CIN7_USERNAME and CIN7_API_KEY',
          401,
          { cause: error },
        );
      }
      if (error instanceof FatalSourceError && error.status === 403) {
        throw new FatalSourceError('The Cin7 API connection lacks read permission for vouchers (403)', 403, {
          cause: error,
        });
      }
      throw error;
    }
    if (!Array.isArray(body)) {
      throw new RetriableSourceError(
        `Cin7 answer to GET v1/Voucher is not an array (found ${body === null ? 'null' : typeof body})`,
      );
    }
    return body;
  }

  return {
    listVouchers({ where, order, page, rows, fields }, call = {}) {
      const params: Record<string, string | number> = { page, rows };
      if (where) params.where = where;
      if (order) params.order = order;
      if (fields) params.fields = Array.isArray(fields) ? fields.join(',') : fields;
      return getVouchers(params, call);
    },

    findByCode(code, call = {}) {
      return getVouchers({ code }, call);
    },
  };
}
