import type { BudgetShare } from '../sync/budget-plan.ts';
import type { CallContext, RequestObserver } from '../types.ts';

/**
 * What a caller of a source client can hand to one call: `signal` cancels it (including a wait for a rate-limit
 * slot or a retry: AbortedError), `observer` is told about every attempt that reaches the network and every 429.
 * The same shape as the engine's CallContext, so the engine passes its context straight through.
 */
export type CallOptions = CallContext;

/** The got `context` understood by the shared HTTP client. */
export type HttpContext = {
  observer?: RequestObserver;
  /** Whose share of the daily budget the request takes (see src/sync/budget-plan.ts); default `bulk`. */
  share?: BudgetShare;
  /** Statuses the caller handles itself (a 404 that means "absent", a 401 that means "log in again"): logged at debug. */
  quietStatuses?: number[];
};
