/**
 * Recovery from an answer too large to hold (HTTP_MAX_RESPONSE_SIZE: a page far larger than asked, a gzip
 * bomb): the same request would fail the same way, so a scan asks for pages half the size, down to one
 * record. A single record that is still too large cannot be read at all: that stretch of the scan stops
 * with an error naming where, and nothing after it is taken for read.
 */
import { FatalSourceError, ResponseTooLargeError } from '../errors.ts';

/**
 * The page size to try after `error`: half of `size` when the answer was too large (at least 1). Any other
 * error is thrown again; so is one too large for a page of one record, as a FatalSourceError naming `where`.
 */
export function smallerPageSize(error: unknown, size: number, where: string): number {
  if (!(error instanceof ResponseTooLargeError)) throw error;
  if (size <= 1) {
    throw new FatalSourceError(
      `${where}: the answer for a single record is larger than HTTP_MAX_RESPONSE_SIZE (${error.limitBytes} bytes); raise it to read this record`,
      undefined,
      { cause: error },
    );
  }
  return Math.max(1, Math.floor(size / 2));
}
