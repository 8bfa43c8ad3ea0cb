/**
 * What `GET /metrics` answers: the process's own metrics (registry.ts: process metrics, requests, limiter waits,
 * runs) and — in the scheduler role and `all` only — the state of each source read from Postgres and Redis
 * (through readStatus, so the status page, `npm run status` and the metrics agree) and BullMQ's queue export.
 * Served by every scheduler, not by every process: otherwise a sum across processes would count them once per
 * process. The shared gauges are rebuilt on every scrape from one status report, so they are never stale.
 */
import type { Queue } from 'bullmq';
import { Gauge, Registry } from 'prom-client';
import type { LimitUsage, SourceState, SourceStatus, StatusReport } from '../status/types.ts';
import { mergeExposition } from './merge-exposition.ts';
import { processRegistry, startProcessMetrics } from './registry.ts';

export type ServiceRole = 'all' | 'worker' | 'scheduler' | 'sync';

export interface RenderMetricsOptions {
  role: ServiceRole;
  /** Reads the shared state (Postgres and Redis); only called in the scheduler role and `all`. */
  readStatus?: () => Promise<StatusReport>;
  /** Queues whose BullMQ export is served (scheduler role and `all` only). */
  queues: Queue[];
  /**
   * Told when the status or the queues could not be read; the scrape still answers, with
   * voucher_sync_status_readable 0 (default: nothing more).
   */
  onError?: (error: unknown) => void;
}

/**
 * `promtool check metrics` refuses a gauge named like a histogram's count or a counter: BullMQ's job count is served
 * as `bullmq_jobs`, and prom-client's `nodejs_active_{handles,requests,resources}_total` gauges are left out — they are
 * the sums of `nodejs_active_handles` (and the others) by type, served beside them.
 */
const LINT_FIXES = {
  rename: { bullmq_job_count: 'bullmq_jobs' },
  drop: ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'],
};

const STATES: readonly SourceState[] = ['paused', 'running', 'waiting', 'failing', 'idle'];

const readsShared = (role: ServiceRole) => role === 'all' || role === 'scheduler';

type Labels = Record<string, string | number>;

/** A gauge in `registry`, set from `values`, which may be empty (a source without a budget has no budget series). */
function gauge(registry: Registry, name: string, help: string, labelNames: string[], values: [Labels, number][]) {
  const metric = new Gauge({ name, help, labelNames, registers: [registry] });
  for (const [labels, value] of values) metric.set(labels, value);
}

/** One series per source: name, help, and the source's value (null: no series, e.g. never succeeded, no budget). */
const SOURCE_GAUGES: [string, string, (s: SourceStatus) => number | null][] = [
  [
    'voucher_sync_last_success_timestamp_seconds',
    'When the last successful run of a source finished (Unix time).',
    (s) => (s.lastSuccessAt === null ? null : Date.parse(s.lastSuccessAt) / 1000),
  ],
  [
    'voucher_sync_freshness_seconds',
    'Age of the newest change we can be sure to hold: time since the last successful incremental run began.',
    (s) => s.freshnessSeconds,
  ],
  [
    'voucher_sync_stale',
    'Whether a source is stale (1): older than voucher_sync_stale_after_seconds, or never synced though scheduled.',
    (s) => Number(s.stale),
  ],
  [
    'voucher_sync_stale_after_seconds',
    'The age past which a source is stale: the longest gap of its incremental schedule plus ALERT_STALE_AFTER.',
    (s) => s.staleAfterSeconds,
  ],
  [
    'voucher_sync_consecutive_failures',
    'Runs of a source that failed in a row since its last success.',
    (s) => s.consecutiveFailures,
  ],
  ['voucher_sync_rejected_records', 'Rejected records of a source not yet resolved.', (s) => s.rejectedOpen],
  [
    'voucher_sync_budget_used',
    'Requests made to a source in the rolling 24 hours of its daily budget.',
    (s) => s.budget?.used ?? null,
  ],
  [
    'voucher_sync_budget_limit',
    'Requests a source allows in the rolling 24 hours of its daily budget.',
    (s) => s.budget?.limit ?? null,
  ],
];

function statusGauges(registry: Registry, report: StatusReport): void {
  const sources = report.sources.filter((s) => s.configured);
  const roles = new Map<string, number>();
  for (const p of report.processes) roles.set(p.role, (roles.get(p.role) ?? 0) + 1);
  const service = 'Whether a service process (worker or scheduler) sent a heartbeat recently (1) or none did (0).';
  gauge(registry, 'voucher_sync_service_up', service, [], [[{}, report.serviceUp ? 1 : 0]]);
  const processes = [...roles].map(([role, n]): [Labels, number] => [{ role }, n]);
  gauge(registry, 'voucher_sync_processes', 'Service processes with a recent heartbeat, by role.', ['role'], processes);
  for (const [name, help, value] of SOURCE_GAUGES) {
    const values = sources.flatMap((s): [Labels, number][] => {
      const v = value(s);
      return v === null ? [] : [[{ source: s.source }, v]];
    });
    gauge(registry, name, help, ['source'], values);
  }
  const windows = (pick: (l: LimitUsage) => number) =>
    sources.flatMap((s) => s.limits.map((l): [Labels, number] => [{ source: s.source, window: l.window }, pick(l)]));
  const used = 'Requests made to a source in each rolling window of its rate limit.';
  gauge(
    registry,
    'voucher_sync_rate_limit_used',
    used,
    ['source', 'window'],
    windows((l) => l.used),
  );
  const limit = 'Requests a source allows in each rolling window of its rate limit.';
  gauge(
    registry,
    'voucher_sync_rate_limit',
    limit,
    ['source', 'window'],
    windows((l) => l.limit),
  );
  const states = sources.flatMap((s) =>
    STATES.map((state): [Labels, number] => [{ source: s.source, state }, s.state === state ? 1 : 0]),
  );
  const help = 'The state of a source: 1 for its current state, 0 for the others.';
  gauge(registry, 'voucher_sync_source_state', help, ['source', 'state'], states);
}

export async function renderMetrics(options: RenderMetricsOptions): Promise<{ contentType: string; body: string }> {
  startProcessMetrics();
  const shared = new Registry();
  gauge(
    shared,
    'voucher_sync_up',
    'This process is up and serving metrics (1), by role.',
    ['role'],
    [[{ role: options.role }, 1]],
  );
  const texts = [await processRegistry.metrics()];
  if (readsShared(options.role)) {
    let readable = 1;
    const fail = (error: unknown) => {
      readable = 0;
      options.onError?.(error);
    };
    const [report, queues] = await Promise.all([
      options.readStatus?.().catch(fail),
      Promise.all(options.queues.map((queue) => queue.exportPrometheusMetrics())).catch(fail),
    ]);
    if (report) statusGauges(shared, report);
    if (queues) texts.push(...queues);
    gauge(
      shared,
      'voucher_sync_status_readable',
      'Whether this scheduler could read the state of the sources from Postgres and Redis (1) or not (0).',
      [],
      [[{}, readable]],
    );
  }
  texts.push(await shared.metrics());
  return { contentType: processRegistry.contentType, body: mergeExposition(texts, LINT_FIXES) };
}
