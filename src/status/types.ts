/**
 * What `npm run status --json`, `/api/status` and the status page show. Field names are stable: scripts and
 * dashboards read them (documented in docs/status.md). Times are ISO 8601 UTC strings, durations in seconds.
 */

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

export interface SourceStatus {
  source: string;
  /** Whether its credentials are set: a source that is not configured is listed, with state idle. */
  configured: boolean;
  state: SourceState;
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
