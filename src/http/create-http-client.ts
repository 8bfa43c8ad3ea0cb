/**
 * The one got setup every source client uses: timeouts (an overall deadline too), the shared rate limiter on every
 * attempt, retries with backoff, `Retry-After`, logging of non-2xx answers, and the mapping of failures onto
 * src/errors.ts. It trusts nothing the server sends: a body is decoded by its declared charset, may not grow past
 * HTTP_MAX_RESPONSE_SIZE once decompressed, and a redirect out of the configured base URL is refused, so no
 * credential ever goes to another host.
 *
 * got runs `beforeRequest` hooks for every attempt (each retry is a new request), so taking the limiter slot
 * there covers retries and redirects too; the slot is counted from the moment its request is handed to the network
 * (see sendReportingSlot), not from its grant. Errors reach callers as FatalSourceError, RetriableSourceError,
 * RateLimitedError or AbortedError, with got's error as `cause`.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import {
  got,
  RequestError,
  TimeoutError,
  type CancelableRequest,
  type Got,
  type Response,
  type PlainResponse,
  type RequestFunction,
  type RetryObject,
} from 'got';
import type { HttpConfig } from '../config.ts';
import { RateLimitedError, RetriableSourceError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { countRateLimitWait, countRequest } from '../metrics/registry.ts';
import type { HttpContext } from './call-options.ts';
import type { RateLimiter } from './rate-limiter.ts';
import { refuseForeignRedirect, staysWithin } from './redirects.ts';
import { decodeBody, responseExcerpt, type ErrorDetails, type InvalidParamsOf } from './response-text.ts';
import { capResponseSize } from './response-size.ts';
import {
  RETRIABLE_STATUSES,
  describeRequest,
  isSourceError,
  toSourceError,
  withoutRequest,
} from './to-source-error.ts';

const NETWORK_ERRORS = [
  'ETIMEDOUT',
  'ECONNRESET',
  'ECONNREFUSED',
  'EADDRINUSE',
  'EPIPE',
  'ENOTFOUND',
  'ENETUNREACH',
  'EAI_AGAIN',
  'EHOSTUNREACH',
];

export interface HttpClientOptions {
  /** Source name for logs and error messages (`carecloud`, `cin7`). */
  source: string;
  /** Every request path is relative to it; no request, redirects included, goes outside it. */
  baseUrl: string;
  /** The setting the base URL comes from, named in errors (default `the configured base URL`). */
  baseUrlSetting?: string;
  http: HttpConfig;
  /** Every attempt, retries included, takes a slot here first. Default: no limiter. */
  limiter?: RateLimiter;
  logger: Logger;
  /** Sent with every request (e.g. Authorization); never logged. */
  headers?: Record<string, string>;
  /** Wait before the first retry in ms, doubled at each further one, ±20 % jitter (default http.retryBackoffMs). */
  backoffBaseMs?: number;
  /** What the source reads from its own error bodies for error messages (default: the generic fields only). */
  errorDetails?: ErrorDetails;
  /** The parameters the source's 400 bodies name as refused: such an answer becomes an InvalidParamsError. */
  invalidParamsOf?: InvalidParamsOf;
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

/**
 * Node's request function for `url`, that tells the limiter when the request of `slot` has left: once its headers and
 * body are handed to the operating system ('finish'). Between the grant and that moment the worker may have been busy
 * for longer than the limiter's margin; counted from its grant, the request would crowd the server's window.
 */
function sendReportingSlot(limiter: RateLimiter, slot: string, logger: Logger): RequestFunction {
  return (url, options, callback) => {
    const request = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, options, callback);
    request.once('finish', () => {
      limiter.sent(slot).catch((error: unknown) => {
        // The slot then counts from its grant: the limiter's margin is all that keeps the server's window.
        logger.warn({ err: error }, 'Could not tell the rate limiter when a request left');
      });
    });
    return request;
  };
}

/** How voucher_sync_api_requests_total counts a failure without a response; a cancellation is not a request. */
const failureStatus = (error: unknown) =>
  error instanceof TimeoutError
    ? 'timeout'
    : error instanceof RequestError && !error.response && NETWORK_ERRORS.includes(error.code)
      ? 'network_error'
      : undefined;

/**
 * The body as JSON, decoded by the charset its Content-Type declares. A 2xx that is not JSON, is empty or cannot be
 * decoded fails (retriable: the next try may be whole); an error answer keeps its text when it is not JSON, for the
 * error's summary.
 */
function parseBody(response: PlainResponse, source: string): unknown {
  const { method } = response.request.options;
  const where = `${method} ${new URL(response.url).pathname}`;
  const ok = response.statusCode >= 200 && response.statusCode <= 299;
  const type = response.headers['content-type'];
  const raw = response.rawBody ?? Buffer.alloc(0);
  let text: string;
  try {
    text = decodeBody(raw, type);
  } catch (error) {
    if (!ok) return raw.toString('latin1');
    throw new RetriableSourceError(
      `${source} answered ${where} with a body that ${(error as Error).message}`,
      response.statusCode,
    );
  }
  if (ok && text.length === 0)
    throw new RetriableSourceError(
      `${source} returned a response that is not JSON to ${where} (empty body)`,
      response.statusCode,
    );
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    if (!ok) return text;
    throw new RetriableSourceError(
      `${source} returned a response that is not JSON to ${where} (${type ?? 'no content type'}, ${raw.length} bytes)`,
      response.statusCode,
      { cause: error },
    );
  }
}

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
    // A server that took the whole deadline would likely take it again: the job's backoff retries, not a worker.
    if (error instanceof TimeoutError && error.event === 'request') return 0;
    if (!retryOptions.methods.includes(error.options.method)) return 0;
    const response = error.response;
    if (
      response ? !retryOptions.statusCodes.includes(response.statusCode) : !retryOptions.errorCodes.includes(error.code)
    )
      return 0;
    const wait = response ? waitFor(response) : Math.round(backoff(attemptCount));
    if (wait <= http.maxInlineWaitMs) return wait;
    if (response?.statusCode === 429 || response?.headers['retry-after'] !== undefined) {
      throw new RateLimitedError(`${source} asks to wait ${wait} ms before retrying ${describeRequest(error)}`, wait, {
        cause: withoutRequest(error),
      });
    }
    return 0; // a backoff this long is the job's business: the error goes up as RetriableSourceError
  };

  // Mapping in a handler rather than a beforeError hook: got skips those hooks when a request is cancelled while
  // it waits to retry, and a handler sees every failure of the promise.
  const mapError = (error: unknown): Error => {
    const response = error instanceof RequestError ? error.response : undefined;
    return toSourceError(
      error,
      source,
      response ? waitFor(response) : undefined,
      options.errorDetails,
      options.invalidParamsOf,
    );
  };

  const prefixUrl = baseUrl.replace(/\/*$/, '/');
  const redirectGuard = { source, baseUrl: prefixUrl, setting: options.baseUrlSetting ?? 'the configured base URL' };

  return got.extend({
    handlers: [
      (request, next) => {
        if (request.isStream) return next(request);
        const pending = next(request);
        const tooLarge = capResponseSize(pending as CancelableRequest<Response>, {
          source,
          maxBytes: http.maxResponseBytes,
          request,
        });
        return (async () => {
          try {
            return await pending;
          } catch (error) {
            // The last attempt's failure; the earlier ones were counted in beforeRetry.
            const failure = failureStatus(error);
            if (failure) countRequest(source, failure);
            throw tooLarge() ?? mapError(error);
          }
        })() as ReturnType<typeof next>;
      },
    ],
    prefixUrl,
    headers: { accept: 'application/json', 'user-agent': 'voucher-sync', ...headers },
    // Bodies are decoded here, by their declared charset, rather than by got (always UTF-8): see parseBody.
    responseType: 'buffer',
    // A redirect is followed only within the base URL; any other is refused by refuseForeignRedirect.
    followRedirect: (response) => staysWithin(response, prefixUrl),
    timeout: {
      lookup: http.connectTimeoutMs,
      connect: http.connectTimeoutMs,
      secureConnect: http.connectTimeoutMs,
      // `socket` is the idle-read timeout; `response` bounds the wait for the first byte.
      socket: http.readTimeoutMs,
      response: http.readTimeoutMs,
      // The whole attempt, body included: a server dripping a byte at a time never trips the two above.
      request: http.requestTimeoutMs,
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
          const waitStarted = performance.now();
          try {
            const { share } = contextOf(request.context);
            const slot = await limiter?.acquire({ signal: request.signal, maxWaitMs: http.maxInlineWaitMs, share });
            // Set again for every attempt and redirect, each with its own slot.
            if (limiter && slot !== undefined) request.request = sendReportingSlot(limiter, slot, logger);
          } finally {
            if (limiter) countRateLimitWait(source, (performance.now() - waitStarted) / 1000);
          }
          contextOf(request.context).observer?.onRequest?.();
        },
      ],
      beforeRetry: [
        (error) => {
          const failure = failureStatus(error);
          if (failure) countRequest(source, failure);
        },
      ],
      afterResponse: [
        (response) => {
          countRequest(source, response.statusCode);
          refuseForeignRedirect(response, redirectGuard);
          return response;
        },
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
            logger[level](
              { method, path, status, attempt: response.retryCount + 1, body: responseExcerpt(response) },
              `${source} answered ${status} to ${method} ${path}`,
            );
          }
          try {
            response.body = parseBody(response, source);
          } catch (error) {
            logger.warn({ method, path, status, body: responseExcerpt(response) }, (error as Error).message);
            throw error;
          }
          return response;
        },
      ],
    },
  });
}
