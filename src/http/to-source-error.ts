import { HTTPError, ParseError, RequestError, TimeoutError } from 'got';
import {
  AbortedError,
  FatalSourceError,
  InvalidParamsError,
  RateLimitedError,
  RetriableSourceError,
} from '../errors.ts';
import { errorObjectOf, errorSummary, type ErrorDetails, type InvalidParamsOf } from './response-text.ts';

/** Statuses worth another try: the request may succeed later unchanged. */
export const RETRIABLE_STATUSES = [408, 429, 500, 502, 503, 504];

export function isSourceError(
  error: unknown,
): error is FatalSourceError | RetriableSourceError | RateLimitedError | AbortedError {
  return (
    error instanceof FatalSourceError ||
    error instanceof RetriableSourceError ||
    error instanceof RateLimitedError ||
    error instanceof AbortedError
  );
}

/** `GET /path` without the query string, which may carry filters we do not want in messages. */
export function describeRequest(error: RequestError): string {
  const url = error.options?.url;
  const path = url instanceof URL ? url.pathname : String(url ?? '').split('?')[0];
  return `${error.options?.method ?? 'GET'} ${path}`;
}

/**
 * got's errors carry the request options (headers with the Authorization value) and the response. Kept as a
 * `cause`, they would reach any log line that serializes the error: keep only what says what happened.
 */
export function withoutRequest(error: RequestError): Error {
  // got's message names the URL with its query string (filters, voucher codes): keep only the path.
  const dropQuery = (text: string | undefined) => text?.replace(/(https?:\/\/[^\s?]+)\?\S*/g, '$1');
  const plain = new Error(dropQuery(error.message));
  plain.name = error.name;
  return Object.assign(plain, { code: error.code, stack: dropQuery(error.stack) });
}

/**
 * Turns what got throws into one of the error classes that steer the job (src/errors.ts), keeping the got error
 * as `cause` (stripped of its request, see withoutRequest). Errors already of those classes (thrown by a hook or the limiter) pass through unchanged.
 * @param retryAfterMs the wait the source asked for, used when the last answer was 429.
 * @param details what the source reads from its own error shape, for the message (see errorSummary).
 * @param invalidParamsOf the parameters a 400 names, read from the source's error shape: an InvalidParamsError then
 *   carries them, for the client to tell which of its parameters was refused.
 */
export function toSourceError(
  error: unknown,
  source: string,
  retryAfterMs?: number,
  details?: ErrorDetails,
  invalidParamsOf?: InvalidParamsOf,
): Error {
  if (isSourceError(error)) return error;
  if (!(error instanceof RequestError)) {
    if (error instanceof Error && error.name === 'AbortError')
      return new AbortedError(`${source} request was cancelled`, { cause: error });
    return error instanceof Error ? error : new Error(String(error));
  }
  if (isSourceError(error.cause)) return error.cause;
  const where = describeRequest(error);
  const attempts = error.request ? error.request.retryCount + 1 : 1;
  const after = attempts > 1 ? ` after ${attempts} attempts` : '';
  if (error.name === 'AbortError')
    return new AbortedError(`${source} request ${where} was cancelled`, { cause: withoutRequest(error) });
  if (error instanceof ParseError) {
    const type = error.response.headers['content-type'] ?? 'no content type';
    return new RetriableSourceError(
      `${source} returned a response that is not JSON to ${where} (${type}, ${error.response.rawBody.length} bytes)`,
      error.response.statusCode,
      { cause: withoutRequest(error) },
    );
  }
  if (error instanceof HTTPError) {
    const status = error.response.statusCode;
    const summary = errorSummary(error.response.body, details);
    const text =
      `${source} answered ${status} ${error.response.statusMessage ?? ''}`.trimEnd() +
      ` to ${where}${after}${summary ? `: ${summary}` : ''}`;
    if (status === 429) return new RateLimitedError(text, retryAfterMs ?? 60_000, { cause: withoutRequest(error) });
    if (RETRIABLE_STATUSES.includes(status) || status >= 500)
      return new RetriableSourceError(text, status, { cause: withoutRequest(error) });
    const refusal = status === 400 ? errorObjectOf(error.response.body) : null;
    const params = refusal && invalidParamsOf ? invalidParamsOf(refusal) : [];
    if (params.length > 0) return new InvalidParamsError(text, status, params, { cause: withoutRequest(error) });
    return new FatalSourceError(text, status, { cause: withoutRequest(error) });
  }
  if (error instanceof TimeoutError && error.event === 'request') {
    const deadline = error.options?.timeout.request;
    const within = deadline === undefined ? 'the overall deadline' : `the overall deadline of ${deadline / 1000} s`;
    return new RetriableSourceError(
      `${source} did not finish ${where} within ${within} (HTTP_REQUEST_TIMEOUT)${after}`,
      undefined,
      { cause: withoutRequest(error) },
    );
  }
  if (error instanceof TimeoutError) {
    return new RetriableSourceError(
      `${source} did not answer ${where} in time (${error.event} timeout)${after}`,
      undefined,
      { cause: withoutRequest(error) },
    );
  }
  if (error.code.startsWith('ERR_')) {
    // Not the network: something inside a hook failed (e.g. Redis for the limiter). Say what.
    return new RetriableSourceError(`${source} request ${where} failed: ${error.message}`, undefined, {
      cause: withoutRequest(error),
    });
  }
  return new RetriableSourceError(
    `The connection to ${source} failed during ${where} (${error.code})${after}`,
    undefined,
    { cause: withoutRequest(error) },
  );
}
