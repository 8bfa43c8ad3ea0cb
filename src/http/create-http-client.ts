/**
 * The one got setup every source client uses: timeouts, the shared rate limiter on every attempt, retries with
 * backoff, `Retry-After`, logging of non-2xx answers, and the mapping of failures onto src/errors.ts.
 *
 * got runs `beforeRequest` hooks for every attempt (each retry is a new request), so taking the limiter slot
 * there covers retries and redirects too. Errors reach callers as FatalSourceError, RetriableSourceError,
 * RateLimitedError or AbortedError, with got's error as `cause`.
 */
import { got, ParseError, RequestError, type Got, type PlainResponse, type RetryObject } from 'got';
import type { HttpConfig } from '../config.ts';
import { RateLimitedError, RetriableSourceError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { HttpContext } from './call-options.ts';
import type { RateLimiter } from './rate-limiter.ts';
import { responseExcerpt } from './response-text.ts';
import { RETRIABLE_STATUSES, describeRequest, isSourceError, toSourceError, withoutRequest } from './to-source-error.ts';

const NETWORK_ERRORS = ['ETIMEDOUT', 'ECONNRESET', 'ECONNREFUSED', 'EADDRINUSE', 'EPIPE', 'ENOTFOUND', 'ENETUNREACH', 'EAI_AGAIN', 'EHOSTUNREACH'];

export interface HttpClientOptions {
  /** Source name for logs and error messages (`carecloud`, `cin7`). */
  source: string;
  /** Every request path is relative to it. */
  baseUrl: string;
  http: HttpConfig;
  /** Every attempt, retries included, takes a slot here first. Default: no limiter. */
  limiter?: RateLimiter;
  logger: Logger;
  /** Sent with every request (e.g. Authorization); never logged. */
  headers?: Record<string, string>;
  /** Wait before the first retry in ms, doubled at each further one, ±20 % jitter (default http.retryBackoffMs). */
  backoffBaseMs?: number;
}

/** `Retry-After` in ms, from seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

const contextOf = (context: Record<string, unknown>): HttpContext => context as HttpContext;

export function createHttpClient(options: HttpClientOptions): Got {
  const { source, baseUrl, http, limiter, headers = {}, backoffBaseMs = http.retryBackoffMs } = options;
  const logger = options.logger.child({ source });
  // The wait decided for a response (Retry-After or backoff), so that the retry, the penalty given to the other
  // workers and the RateLimitedError all use the same number.
  const waits = new WeakMap<PlainResponse, number>();

  const backoff = (attempt: number) => backoffBaseMs * 2 ** (attempt - 1) * (0.8 + Math.random() * 0.4);
  const waitFor = (response: PlainResponse) => {
    let wait = waits.get(response);
    if (wait === undefined) {
      const retryAfter = parseRetryAfter(response.headers['retry-after']);
      wait = Math.round(retryAfter !== undefined && retryAfter > 0 ? retryAfter : backoff(response.retryCount + 1));
      waits.set(response, wait);
    }
    return wait;
  };

  const calculateDelay = async ({ attemptCount, retryOptions, error }: RetryObject): Promise<number> => {
    if (error.name === 'RetryError') return 1; // an afterResponse hook asked to repeat the request
    if (isSourceError(error.cause) || attemptCount > retryOptions.limit) return 0;
    if (!retryOptions.methods.includes(error.options.method)) return 0;
    const response = error.response;
    if (response ? !retryOptions.statusCodes.includes(response.statusCode) : !retryOptions.errorCodes.includes(error.code)) return 0;
    const wait = response ? waitFor(response) : Math.round(backoff(attemptCount));
    if (wait <= http.maxInlineWaitMs) return wait;
    if (response?.statusCode === 429 || response?.headers['retry-after'] !== undefined) {
      throw new RateLimitedError(`${source} asks to wait ${wait} ms before retrying ${describeRequest(error)}`, wait, { cause: withoutRequest(error) });
    }
    return 0; // a backoff this long is the job's business: the error goes up as RetriableSourceError
  };

  // Mapping in a handler rather than a beforeError hook: got skips those hooks when a request is cancelled while
  // it waits to retry, and a handler sees every failure of the promise.
  const mapError = (error: unknown): Error => {
    const response = error instanceof RequestError ? error.response : undefined;
    const mapped = toSourceError(error, source, response ? waitFor(response) : undefined);
    if (error instanceof ParseError && mapped instanceof RetriableSourceError) {
      logger.warn(
        { method: error.options.method, path: new URL(error.response.url).pathname, status: error.response.statusCode, body: responseExcerpt(error.response) },
        mapped.message,
      );
    }
    return mapped;
  };

  return got.extend({
    handlers: [
      (request, next) => {
        if (request.isStream) return next(request);
        return (async () => {
          try {
            return await next(request);
          } catch (error) {
            throw mapError(error);
          }
        })() as ReturnType<typeof next>;
      },
    ],
    prefixUrl: baseUrl.replace(/\/*$/, '/'),
    headers: { accept: 'application/json', 'user-agent': 'voucher-sync', ...headers },
    responseType: 'json',
    timeout: {
      lookup: http.connectTimeoutMs,
      connect: http.connectTimeoutMs,
      secureConnect: http.connectTimeoutMs,
      // `socket` is the idle-read timeout; `response` bounds the wait for the first byte.
      socket: http.readTimeoutMs,
      response: http.readTimeoutMs,
    },
    retry: {
      limit: http.retries,
      methods: ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE'],
      statusCodes: RETRIABLE_STATUSES,
      errorCodes: NETWORK_ERRORS,
      // Left alone, got sleeps for any Retry-After. calculateDelay never waits past maxInlineWaitMs; this matches it
      // for got's own computation.
      maxRetryAfter: http.maxInlineWaitMs,
      calculateDelay,
    },
    hooks: {
      beforeRequest: [
        async (request) => {
          await limiter?.acquire({ signal: request.signal, maxWaitMs: http.maxInlineWaitMs });
          contextOf(request.context).observer?.onRequest?.();
        },
      ],
      afterResponse: [
        async (response) => {
          const { method, context } = response.request.options;
          const { observer, quietStatuses = [] } = contextOf(context);
          const status = response.statusCode;
          const path = new URL(response.url).pathname;
          if (status === 429) {
            observer?.onRateLimited?.();
            await limiter?.penalize(waitFor(response));
          }
          if (status < 200 || status > 299) {
            const level = quietStatuses.includes(status) ? 'debug' : 'warn';
            logger[level]({ method, path, status, attempt: response.retryCount + 1, body: responseExcerpt(response) }, `${source} answered ${status} to ${method} ${path}`);
          } else if (response.rawBody.length === 0 && response.request.options.responseType === 'json') {
            // got turns an empty body into '' instead of failing the JSON parse.
            throw new RetriableSourceError(`${source} returned a response that is not JSON to ${method} ${path} (empty body)`, status);
          }
          return response;
        },
      ],
    },
  });
}

