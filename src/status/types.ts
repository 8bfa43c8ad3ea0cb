/**
 * What `npm run status --json`, `/api/status` and the status page show. Field names are stable: scripts and
 * dashboards read them (documented in docs/status.md). Times are ISO 8601 UTC strings, durations in seconds.
 */

import type { BudgetPlan } from '../sync/budget-plan.ts';

/** One state per source, the first that applies. */
export type SourceState = 'paused' | 'running' | 'waiting' | 'failing' | 'idle';

/** Why a run is held back. */
export type WaitingReason = 'rate_limit' | 'daily_budget' | 'source_busy';

export interface RunProgress {
  /** The logical run's id (its first ledger row). */
  id: string;
  mode: string;
  startedAt: string;
  pages: number;
  records: number;
  requests: number;
  /** Records the scan expects in all, when the API said (CareCloud's total) or a plan estimated; else null. */
  estimatedTotal: number | null;
  /** Records per second over the run so far; null before the first page. */
  rate: number | null;
  /** Seconds left, from the measured rate and the source's rate limit (the slower of the two); null when unknown. */
  etaSeconds: number | null;
}

export interface LimitUsage {
  /** The window as configured, e.g. "60s". */
  window: string;
  windowSeconds: number;
  used: number;
  limit: number;
}

/** Records a list request of the source asks for, and how that number came about. */
export interface PageSizeStatus {
  /** Asked for now: the number configured; with `auto`, the one found (the ceiling, or the next probe, until then). */
  size: number;
  /** `configured`: set to a number (CARECLOUD_PAGE_SIZE=100); `auto`: found at run time, up to `ceiling`. */
  setting: 'configured' | 'auto';
  /** With `auto`: the largest page the source accepts is known, and requests no longer probe. */
  found: boolean;
  /** With `auto`: the largest page the source accepted, and the smallest it refused (400 naming the parameter). */
  accepted: number | null;
  refused: number | null;
  /** With `auto`: the most a request asks for. */
  ceiling: number | null;
  /** With `auto`: when what is known last changed. */
  checkedAt: string | null;
}

export interface SourceStatus {
  source: string;
  /** Whether its credentials are set: a source that is not configured is listed, with state idle. */
  configured: boolean;
  state: SourceState;
  /**
   * Paused by `voucher-sync pause` (kept in Postgres): since when, and by whom (null when unknown). Null when it is not.
   * Its scheduled runs are skipped; a run under way when it was paused goes on to its end.
   */
  paused: { since: string; by: string | null } | null;
  lastSuccessAt: string | null;
  /** Age of the newest change we can be sure to hold: time since the last successful incremental run began. */
  freshnessSeconds: number | null;
  /**
   * Freshness beyond `staleAfterSeconds`; also true for a source expected to run that has no successful incremental
   * run yet (its data is of unknown age).
   */
  stale: boolean;
  /** The longest gap of its incremental schedule plus ALERT_STALE_AFTER; null when that schedule is off or unknown. */
  staleAfterSeconds: number | null;
  run: RunProgress | null;
  waiting: { reason: WaitingReason; until: string | null } | null;
  nextRuns: { mode: string; at: string }[];
  queue: { waiting: number; active: number; delayed: number; failed: number };
  rejectedOpen: number;
  limits: LimitUsage[];
  budget: { used: number; limit: number; windowSeconds: number } | null;
  /**
   * The budget plan (src/sync/budget-plan.ts): what the pending reconciliations and backfills need, what the budget
   * allows them, when they should be done; null when the source has no daily budget.
   */
  plan: BudgetPlan | null;
  /** Records a list request asks for; null when the source does not say (not configured, or no page size). */
  pageSize: PageSizeStatus | null;
  /** 429 responses in the last hour. */
  recent429: number;
  consecutiveFailures: number;
  lastError: { at: string; message: string } | null;
}

export interface StatusReport {
  /** When this report was read. */
  at: string;
  /** At least one service process (worker or scheduler) sent a heartbeat recently. */
  serviceUp: boolean;
  /** The live processes, from their heartbeats. */
  processes: { id: string; role: string; host: string; pid: number; sources: string[]; startedAt: string }[];
  sources: SourceStatus[];
}
