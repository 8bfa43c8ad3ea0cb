/**
 * readStatus: the one reading of how every source stands, behind `npm run status`, `/api/status`, the status page,
 * the Prometheus gauges and the alerts. It reads Postgres and Redis only — never a service process — so it answers
 * the same while the service is down, and says so (no heartbeat: `serviceUp` false).
 *
 * One state per source, the first that applies: paused (by `voucher-sync pause`, or its queue is paused), running (a run is reading), waiting
 * (a run exists but a rate limit, the daily budget or another run holds it back), failing (failed runs since the
 * last success), idle.
 */
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../config.ts';
import type { Db } from '../db/client.ts';
import { createRateLimiter, type RateLimiterUsage } from '../http/rate-limiter.ts';
import { maskPersonalData } from '../logger.ts';
import { sectionOf, sources } from '../sources/index.ts';
import type { SourceSettings } from '../types.ts';
import { readHeartbeats } from '../../jobs/heartbeat.ts';
import { waitingOf as jobWaitingOf } from '../../jobs/steer-error.ts';
import { estimateEta, sustainedRate } from './eta.ts';
import {
  countOpenRejections,
  failuresSinceSuccess,
  latestRow,
  liveRows,
  logicalRunRows,
  recentRateLimited,
  streamStates,
  type Failures,
  type LedgerRow,
} from '../db/status-reads.ts';
import { readPause } from '../db/source-control.ts';
import { pageSizeStatus } from './page-size-status.ts';
import { scheduleIntervalMs } from './schedule-interval.ts';
import { pendingScans } from '../db/budget-reads.ts';
import { planBudget } from '../sync/budget-plan.ts';
import type { RunProgress, SourceState, SourceStatus, StatusReport, WaitingReason } from './types.ts';

export interface StatusDeps {
  db: Db;
  redis: Redis;
  config: Config;
  /** The time the report is read at (default: now). */
  now?: Date;
}

const WAITING_REASONS: readonly string[] = ['rate_limit', 'daily_budget', 'source_busy'] satisfies WaitingReason[];

export async function readStatus(deps: StatusDeps): Promise<StatusReport> {
  const now = deps.now ?? new Date();
  const [processes, statuses] = await Promise.all([
    readHeartbeats(deps.redis, deps.config.jobs.prefix),
    Promise.all(sources.map((source) => readSource(deps, source, now))),
  ]);
  return { at: now.toISOString(), serviceUp: processes.length > 0, processes, sources: statuses };
}

/** What Redis says of a source: its queue and its limiter. */
interface RedisSide {
  paused: boolean;
  counts: SourceStatus['queue'];
  nextRuns: SourceStatus['nextRuns'];
  /** The queue is held after a long rate-limit wait (queue.rateLimit), for this many ms more. */
  queueHeldMs: number;
  usage: RateLimiterUsage | null;
  /** When the daily budget lets the next request through, when it is spent. */
  budgetFreeAt: Date | null;
  /** What a job held back says it waits for (its BullMQ progress, see jobs/steer-error.ts), while still ahead. */
  jobWaiting: SourceStatus['waiting'];
  /** The modes of the source's jobs not finished (the first few), for the budget plan. */
  queuedModes: string[];
}

async function readSource(deps: StatusDeps, source: (typeof sources)[number], now: Date): Promise<SourceStatus> {
  const { name } = source;
  const section: unknown = sectionOf(deps.config, source);
  const settings: SourceSettings | null = section === null ? null : source.settings(section);
  const { db } = deps;
  const [redisSide, live, latest, streams, failures, recent429, rejectedOpen, pause] = await Promise.all([
    readRedisSide(deps, name, settings),
    liveRows(db, name),
    latestRow(db, name),
    streamStates(db, name),
    failuresSinceSuccess(db, name),
    recentRateLimited(db, name, new Date(now.getTime() - 3_600_000)),
    countOpenRejections(db, name),
    readPause(db, name),
  ]);
  const found = section === null ? undefined : source.createStreams(section).find((s) => s.pageSizing);
  const pageSize = pageSizeStatus({
    configured: settings?.limits.recordsPerRequest,
    found: found?.pageSizing && { stream: found.name, ceiling: found.pageSizing.ceiling },
    rows: streams,
  });
  const freshFrom = oldest(streams.map((s) => s.freshFrom));
  const lastSuccess = oldest(streams.map((s) => s.lastSuccessAt));
  const current = live[0] ?? null;
  const pending = redisSide.counts.waiting + redisSide.counts.active > 0;
  const waiting = waitingOf({ current, pending, redisSide, now });
  // A run held back between jobs (interrupted by a long wait, its job back in the queue) is still the same run.
  const held = current ?? (waiting && latest?.status === 'interrupted' ? latest : null);
  const run = held && (await progressOf(db, held, settings, waiting, now));

  const freshnessSeconds = freshFrom && Math.max(0, Math.round((now.getTime() - freshFrom.getTime()) / 1000));
  const interval = settings && scheduleIntervalMs(settings.schedules.incremental, now);
  const staleAfterSeconds =
    interval === null || interval === undefined
      ? null
      : Math.round((interval + deps.config.alerts.staleMarginMs) / 1000);
  const plan =
    settings &&
    planBudget({
      pending: await pendingScans(db, name, redisSide.queuedModes),
      // Pending records in requests of the size in use: with `auto`, the one found rather than the ceiling.
      limits: { ...settings.limits, recordsPerRequest: pageSize?.size ?? settings.limits.recordsPerRequest },
      usedInWindow: redisSide.usage?.dailyUsed ?? 0,
      bulkUsedInWindow: redisSide.usage?.bulkUsed ?? 0,
      requestsPerSecond: sustainedRate(settings.limits.windows),
      now,
    });
  return {
    source: name,
    configured: section !== null,
    state: stateOf({
      paused: pause !== null || redisSide.paused,
      reading: current?.status === 'running',
      waiting,
      failures,
    }),
    paused: pause && { since: pause.since.toISOString(), by: pause.by },
    lastSuccessAt: lastSuccess?.toISOString() ?? null,
    freshnessSeconds,
    // A source never synced holds data of unknown age: stale, once it is expected to run at all.
    stale: staleAfterSeconds !== null && (freshnessSeconds === null || freshnessSeconds > staleAfterSeconds),
    staleAfterSeconds,
    run,
    waiting,
    nextRuns: redisSide.nextRuns,
    queue: redisSide.counts,
    rejectedOpen,
    ...usageOf(redisSide.usage),
    plan,
    pageSize,
    recent429,
    consecutiveFailures: failures.count,
    lastError: failures.last && {
      at: failures.last.at.toISOString(),
      message: maskPersonalData(failures.last.message),
    },
  };
}

/** The first state that applies. */
function stateOf(facts: {
  paused: boolean;
  reading: boolean;
  waiting: SourceStatus['waiting'];
  failures: Failures;
}): SourceState {
  if (facts.paused) return 'paused';
  if (facts.reading && !facts.waiting) return 'running';
  if (facts.waiting) return 'waiting';
  return facts.failures.count > 0 ? 'failing' : 'idle';
}

/** The limiter's counts as the report shows them. */
function usageOf(usage: RateLimiterUsage | null): Pick<SourceStatus, 'limits' | 'budget'> {
  return {
    limits: (usage?.windows ?? []).map((w) => ({
      window: windowLabel(w.windowMs),
      windowSeconds: w.windowMs / 1000,
      used: w.used,
      limit: w.max,
    })),
    budget:
      usage?.dailyBudget === null || usage?.dailyBudget === undefined
        ? null
        : { used: usage.dailyUsed ?? 0, limit: usage.dailyBudget, windowSeconds: usage.budgetWindowMs / 1000 },
  };
}

/** The oldest of some times, or null when any is unknown (or there are none): the stalest stream speaks. */
function oldest(times: (Date | null)[]): Date | null {
  if (times.length === 0 || times.some((t) => t === null)) return null;
  return new Date(Math.min(...times.map((t) => t!.getTime())));
}

const windowLabel = (ms: number) => (ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`);

/**
 * The queues status reads through, one per connection, prefix and source, kept: a BullMQ Queue asks the server for
 * its version when made, which would cost every report (the status page refreshes on a timer) a round trip per
 * source. Made here rather than by createSourceQueue, which also sets the queue's concurrency: reading writes
 * nothing. They hold no connection of their own, so the connection's owner closing it is all the cleanup needed.
 */
const readers = new WeakMap<Redis, Map<string, Queue>>();

function readerQueue(redis: Redis, prefix: string, name: string): Queue {
  let byName = readers.get(redis);
  if (!byName) readers.set(redis, (byName = new Map()));
  const key = `${prefix}\n${name}`;
  let queue = byName.get(key);
  if (!queue) byName.set(key, (queue = new Queue(name, { connection: redis, prefix })));
  return queue;
}

async function readRedisSide(deps: StatusDeps, name: string, settings: SourceSettings | null): Promise<RedisSide> {
  const { redis, config } = deps;
  const queue = readerQueue(redis, config.jobs.prefix, name);
  const limiter =
    settings &&
    createRateLimiter({
      redis,
      key: `${config.jobs.prefix}:limiter:${name}`,
      windows: settings.limits.windows,
      dailyBudget: settings.limits.dailyBudget,
      incrementalReserve: settings.limits.incrementalReserve,
      budgetWindowMs: settings.limits.budgetWindowMs,
    });
  const [paused, counts, schedulers, queueHeldMs, usage, jobs] = await Promise.all([
    queue.isPaused(),
    queue.getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'failed'),
    queue.getJobSchedulers(),
    // Only a hold set by queue.rateLimit (which counts MAX_SAFE_INTEGER jobs), not the worker's own spacing of
    // run starts (one a second), which would make every run look held for its first second.
    queue.getRateLimitTtl(Number.MAX_SAFE_INTEGER),
    limiter?.usage() ?? null,
    // The first few are enough: one job of a source runs at a time, and the ones behind it wait for it.
    queue.getJobs(['active', 'waiting', 'prioritized', 'delayed'], 0, 19),
  ]);
  const now = Date.now();
  const jobWaiting =
    jobs
      .map((job) => (job ? jobWaitingOf(job) : null))
      .find((w) => w !== null && (w.until === null || Date.parse(w.until) > now)) ?? null;
  const spent = usage?.dailyBudget != null && (usage.dailyUsed ?? 0) >= usage.dailyBudget;
  return {
    paused,
    counts: {
      waiting: (counts.waiting ?? 0) + (counts.prioritized ?? 0),
      active: counts.active ?? 0,
      delayed: counts.delayed ?? 0,
      failed: counts.failed ?? 0,
    },
    nextRuns: schedulers
      .filter((s) => typeof s.next === 'number')
      .map((s) => ({ mode: s.name, at: new Date(s.next!).toISOString() }))
      .sort((a, b) => a.at.localeCompare(b.at)),
    queueHeldMs: Math.max(0, queueHeldMs),
    usage,
    // With the budget spent, the day's window is what holds requests back; when it lets one through is the limiter's
    // to say (its windows, as acquire counts them).
    budgetFreeAt: spent && limiter ? await limiter.nextFreeAt() : null,
    jobWaiting,
    queuedModes: jobs.flatMap((job) => (job ? [(job.data as { mode?: string } | undefined)?.mode ?? ''] : [])),
  };
}

/**
 * Why a run is held back, if it is: what its ledger row says first (the run knows best), then what its job says
 * (a job put back behind another run of its source has no row yet), then what Redis shows — a queue held after a
 * long rate-limit wait, a 429 pause, a spent budget.
 */
function waitingOf(input: {
  current: LedgerRow | null;
  pending: boolean;
  redisSide: RedisSide;
  now: Date;
}): SourceStatus['waiting'] {
  const { current, pending, redisSide, now } = input;
  if (current && (current.status === 'waiting' || current.waitingReason !== null)) {
    const reason = WAITING_REASONS.includes(current.waitingReason ?? '') ? current.waitingReason : 'rate_limit';
    return { reason: reason as WaitingReason, until: current.waitingUntil?.toISOString() ?? null };
  }
  if (!current && redisSide.jobWaiting) return redisSide.jobWaiting;
  if (!current && !pending) return null;
  const after = (ms: number) => new Date(now.getTime() + ms).toISOString();
  const budgetUntil = redisSide.budgetFreeAt?.toISOString() ?? null;
  const penaltyMs = redisSide.usage?.penaltyMs ?? 0;
  if (!current && redisSide.queueHeldMs > 0)
    return budgetUntil !== null
      ? { reason: 'daily_budget', until: budgetUntil }
      : { reason: 'rate_limit', until: after(redisSide.queueHeldMs) };
  if (budgetUntil !== null) return { reason: 'daily_budget', until: budgetUntil };
  if (penaltyMs > 0) return { reason: 'rate_limit', until: after(penaltyMs) };
  return null;
}

/** The logical run `row` belongs to, added up over its rows, with its rate and ETA. */
async function progressOf(
  db: Db,
  row: LedgerRow,
  settings: SourceSettings | null,
  waiting: SourceStatus['waiting'],
  now: Date,
): Promise<RunProgress> {
  const id = row.logicalRunId ?? row.id;
  const rows = await logicalRunRows(db, id);
  if (rows.length === 0) rows.push(row);
  const sum = (pick: (r: LedgerRow) => number) => rows.reduce((total, r) => total + pick(r), 0);
  const pages = sum((r) => r.pages);
  const records = sum((r) => r.fetched);
  const requests = sum((r) => r.apiCalls);
  const estimatedTotal = rows.findLast((r) => r.estimatedTotal !== null)?.estimatedTotal ?? null;
  // The time spent reading: each row from its start to its end, or for the row reading now, to now. Time between
  // jobs, and a held row's wait since its last page, is not reading and would make the pace look slower than it is.
  const elapsedMs = sum((r) => {
    const end = r.finishedAt ?? (r.status === 'running' && !waiting ? now : r.heartbeatAt);
    return Math.max(0, end.getTime() - r.startedAt.getTime());
  });
  const { rate, etaSeconds } = estimateEta({
    done: records,
    total: estimatedTotal,
    elapsedSeconds: elapsedMs / 1000,
    requests,
    requestsPerSecond: settings && sustainedRate(settings.limits.windows),
  });
  const heldFor = waiting?.until ? Math.max(0, Date.parse(waiting.until) - now.getTime()) / 1000 : 0;
  return {
    id: String(id),
    mode: rows[0]!.mode,
    startedAt: rows[0]!.startedAt.toISOString(),
    pages,
    records,
    requests,
    estimatedTotal,
    rate: rate === null ? null : Math.round(rate * 100) / 100,
    etaSeconds: etaSeconds === null ? null : Math.round(etaSeconds + heldFor),
  };
}
