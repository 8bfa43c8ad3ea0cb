/**
 * A run held back is waiting, not failing: a long rate-limit wait, the daily budget, another run of its source.
 * What it waits for, in the words the ledger, the log and `npm run sync` use.
 */
import { RateLimitedError } from '../errors.ts';
import type { WaitingReason } from '../status/types.ts';

/** A wait the engine itself decided on (slices held back by their queue's limit), its reason known. */
export class WaitingError extends RateLimitedError {
  constructor(
    message: string,
    retryAfterMs: number,
    readonly waitingReason: WaitingReason,
    options?: { cause?: unknown },
  ) {
    super(message, retryAfterMs, options);
  }
}

/** Why a RateLimitedError holds the run back: the daily budget, or a rate limit (ours or the server's 429). */
export function waitingReasonOf(error: RateLimitedError): WaitingReason {
  return error instanceof WaitingError ? error.waitingReason : error.reason;
}

const WHAT: Record<WaitingReason, string> = {
  rate_limit: 'the rate limit',
  daily_budget: 'the daily budget',
  source_busy: 'another run of this source',
};

/** "waiting for the daily budget until 2026-12-02T10:00:00.000Z" */
export function describeWait(reason: WaitingReason, until: Date | null): string {
  return `waiting for ${WHAT[reason]}${until === null ? '' : ` until ${until.toISOString()}`}`;
}
