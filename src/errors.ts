/**
 * The few error classes that steer retries. The job layer maps them onto BullMQ:
 * FatalSourceError → UnrecoverableError (no retry), RateLimitedError → a queue-level pause,
 * RetriableSourceError → the job's exponential backoff.
 */

/** An error answered by (or on the way to) a source; `status` is the HTTP status when there was one. */
abstract class SourceError extends Error {
  constructor(
    message: string,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Bad credentials, forbidden, bad request, not found: retrying cannot help. */
export class FatalSourceError extends SourceError {
  override readonly name = 'FatalSourceError';
}

/** A parameter the server named in an error answer (CareCloud's `invalid_params[]`), with its message. */
export interface InvalidParam {
  name: string;
  message: string;
}

/** A 400 whose body names the request's parameters that were refused: fatal as any bad request, with their names. */
export class InvalidParamsError extends FatalSourceError {
  constructor(
    message: string,
    status: number,
    readonly params: InvalidParam[],
    options?: { cause?: unknown },
  ) {
    super(message, status, options);
  }
}

/**
 * The server refuses a page this large: a 400 naming the page-size parameter (CareCloud `count`, whose maximum is not
 * documented). A scan whose page size is found at run time asks for a smaller one (src/sync/page-size.ts); otherwise
 * it is a bad request like any other.
 */
export class PageSizeRefusedError extends FatalSourceError {
  constructor(
    message: string,
    /** The page size refused. */
    readonly size: number,
    /** A largest size the server's message named (e.g. "count must be from 1 to 700"), below `size`; a hint only. */
    readonly hint: number | undefined,
    options?: { cause?: unknown },
  ) {
    super(message, 400, options);
  }
}

/** 5xx, timeouts, network errors, unreadable bodies: worth another try later. */
export class RetriableSourceError extends SourceError {
  override readonly name: string = 'RetriableSourceError';
}

/**
 * A response grew past HTTP_MAX_RESPONSE_SIZE once decompressed (a page far larger than asked, a gzip bomb).
 * Retrying the same request cannot help; a scan asks for a smaller page instead (see src/sync/).
 */
export class ResponseTooLargeError extends RetriableSourceError {
  override readonly name = 'ResponseTooLargeError';
  constructor(
    message: string,
    /** The cap that was exceeded, in bytes. */
    readonly limitBytes: number,
    options?: { cause?: unknown },
  ) {
    super(message, undefined, options);
  }
}

/**
 * The source (429) or our own limiter (daily budget) asks us to wait longer than is reasonable inside a
 * request. The job hands the wait to the queue instead of sleeping while holding a worker.
 */
export class RateLimitedError extends Error {
  override readonly name = 'RateLimitedError';
  constructor(
    message: string,
    /** How long to wait before the next request, in milliseconds. */
    readonly retryAfterMs: number,
    options?: { cause?: unknown; reason?: 'rate_limit' | 'daily_budget' },
  ) {
    super(message, options);
    this.reason = options?.reason ?? 'rate_limit';
  }
  /** What holds the requests back: a rate limit (ours, or the server's 429) or the daily budget. */
  readonly reason: 'rate_limit' | 'daily_budget';
}

/** A configuration value is missing or invalid. The message names the variable, never its secret value. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** A run was asked to stop (shutdown); what was committed stays committed. */
export class AbortedError extends Error {
  override readonly name: string = 'AbortedError';
}

/**
 * An operator cancelled the run (voucher-sync cancel, Ctrl-C on voucher-sync sync): it stops after its current page
 * like a shutdown, but is recorded `cancelled` and its job is not retried; the next run resumes the scan.
 */
export class CancelledError extends AbortedError {
  override readonly name = 'CancelledError';
}
