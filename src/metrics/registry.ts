/**
 * The process's own Prometheus metrics: what this process did (requests, limiter waits, runs and their records),
 * counted as it happens. Every service process serves these; Prometheus sums them across processes.
 *
 * Why module-level rather than passed as an argument: the HTTP client of each source is built inside the source's
 * folder (src/sources/<name>/), which should not have to know about metrics, and a counter is only ever added to.
 * A test reads deltas, never absolute values.
 *
 * What is read from Postgres or Redis (freshness, budget, last success, the queues) is not here but in
 * render-metrics.ts, served by the scheduler role only: served by every process, it would be summed once per process.
 */
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { RunCounters } from '../types.ts';

/** How a run ended, as the ledger records it; the `status` label of the run metrics. */
export const RUN_STATUSES = ['succeeded', 'failed', 'cancelled', 'abandoned', 'interrupted'] as const;

/** The run counters a record ends up in; the `outcome` label of voucher_sync_records_total. */
export const RECORD_OUTCOMES = ['inserted', 'updated', 'unchanged', 'rejected', 'deleted'] as const;

/** A second to six hours: an idle incremental run takes about a second, a first backfill of Cin7 hours. */
export const DURATION_BUCKETS = [1, 2, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 21600];

/** The `status` label of voucher_sync_api_requests_total: an HTTP status, or why there was none. */
export type RequestStatus = number | 'network_error' | 'timeout';

export const processRegistry = new Registry();

const runDuration = new Histogram({
  name: 'voucher_sync_run_duration_seconds',
  help: 'Duration of finished runs, by how they ended (succeeded, failed, cancelled, abandoned, interrupted).',
  labelNames: ['source', 'mode', 'status'] as const,
  buckets: DURATION_BUCKETS,
  registers: [processRegistry],
});

const records = new Counter({
  name: 'voucher_sync_records_total',
  help: 'Records written by finished runs, by outcome (inserted, updated, unchanged, rejected, deleted).',
  labelNames: ['source', 'outcome'] as const,
  registers: [processRegistry],
});

const apiRequests = new Counter({
  name: 'voucher_sync_api_requests_total',
  help: 'Requests to a source API, retries included, by HTTP status (network_error or timeout when none came).',
  labelNames: ['source', 'status'] as const,
  registers: [processRegistry],
});

const limiterWait = new Counter({
  name: 'voucher_sync_rate_limit_wait_seconds_total',
  help: 'Time requests spent waiting for a slot of the shared rate limiter, in seconds.',
  labelNames: ['source'] as const,
  registers: [processRegistry],
});

let defaultsStarted = false;

/** Starts prom-client's process metrics (CPU, memory, event loop, GC) the first time metrics are rendered. */
export function startProcessMetrics(): void {
  if (defaultsStarted) return;
  defaultsStarted = true;
  collectDefaultMetrics({ register: processRegistry });
}

export function countRequest(source: string, status: RequestStatus): void {
  apiRequests.inc({ source, status: String(status) });
}

export function countRateLimitWait(source: string, seconds: number): void {
  if (seconds > 0) limiterWait.inc({ source }, seconds);
}

export interface FinishedRun {
  source: string;
  mode: string;
  status: string;
  durationSeconds: number;
  counters: Pick<RunCounters, (typeof RECORD_OUTCOMES)[number]>;
}

export function observeRun(run: FinishedRun): void {
  runDuration.observe({ source: run.source, mode: run.mode, status: run.status }, Math.max(0, run.durationSeconds));
  for (const outcome of RECORD_OUTCOMES) records.inc({ source: run.source, outcome }, run.counters[outcome]);
}
