/**
 * Watching for a cancellation (voucher-sync cancel, Ctrl-C on voucher-sync sync). The request travels through
 * Postgres (src/db/source-control.ts), so the command and the worker reading the run may be on any machines: the
 * worker looks for it every few seconds while the run lasts, and aborts the run's signal with a CancelledError, so
 * the run stops at its next page boundary (src/sync/page-loop.ts) and is recorded `cancelled`.
 */
import { CancelledError } from '../src/errors.ts';
import type { Logger } from '../src/logger.ts';
import type { CancelRequest } from '../src/db/source-control.ts';

/** How often a running job looks for a request to stop, in ms. */
export const CANCEL_POLL_MS = 2_000;

export interface CancelWatch {
  /** Aborted, with a CancelledError as its reason, once a request is found. */
  readonly signal: AbortSignal;
  stop(): void;
}

/** The reason a cancelled run gives: "cancelled by voucher-sync cancel (ops@host) at …". */
export function cancelledError(request: CancelRequest): CancelledError {
  return new CancelledError(`cancelled by ${request.by ?? 'an operator'} at ${request.at.toISOString()}`);
}

/** Looks for a request with `find` every `everyMs`, from now until stopped. A failed look is tried again. */
export function watchCancel(
  find: () => Promise<CancelRequest | null>,
  options: { logger: Logger; everyMs?: number },
): CancelWatch {
  const controller = new AbortController();
  let looking = false;
  let warned = false;
  const look = async () => {
    if (looking || controller.signal.aborted) return;
    looking = true;
    try {
      const request = await find();
      if (request) controller.abort(cancelledError(request));
    } catch (error) {
      if (!warned) options.logger.warn({ err: error }, 'could not look for a request to cancel the run; trying again');
      warned = true;
    } finally {
      looking = false;
    }
  };
  const timer = setInterval(() => void look(), options.everyMs ?? CANCEL_POLL_MS);
  timer.unref();
  return {
    signal: controller.signal,
    stop: () => clearInterval(timer),
  };
}
