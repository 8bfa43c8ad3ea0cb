/**
 * What the status page's charts draw, read from the ledger (`sync_runs`) and `rejected_records`: per source its
 * runs (or, when there are many, per time bucket, aggregated in SQL), its freshness over time, and its requests
 * per hour against the limits with the rolling 24 h total against the daily budget. Every query reads a source's
 * rows by the (source, started_at) index, so a year of 5-minute runs costs no more than the days asked for.
 *
 * Kept beside the server rather than in src/db/ because the shapes are the page's own; the statements take the
 * database as an argument like the rest.
 */
import type { Config, SourceLimits } from '../config.ts';
import { largeQueries, type Db } from '../db/client.ts';
import { maskPersonalData } from '../logger.ts';
import { sectionOf, sources } from '../sources/index.ts';
import { openRejections } from '../status/ledger-reads.ts';

/** Beyond this many runs of a source in the range, runs are aggregated into time buckets. */
export const MAX_RUN_POINTS = 1000;
/** The longest range /api/history serves. */
export const MAX_DAYS = 400;

/** One run (a logical run: the ledger rows of one run resumed over several jobs count once) or one bucket of runs. */
export interface RunPoint {
  /** When the run (or the bucket) began, ISO 8601. */
  at: string;
  /** Runs in this point: 1 per run; in bucket mode, how many runs began in the bucket. */
  runs: number;
  /** Per run: its mode and final status; in bucket mode null. */
  mode: string | null;
  status: string | null;
  /** Wall time from its first row's start to its last row's end (now, for one still going); bucket: the longest. */
  durationSeconds: number;
  /** Records fetched; bucket: the sum over its runs. */
  records: number;
  inserted: number;
  updated: number;
  deleted: number;
  /** API requests; bucket: the sum. */
  requests: number;
  /** Bucket mode only: failed runs in the bucket. */
  failed: number;
}

/** The freshness an operator had just before a successful incremental run ended. */
export interface FreshnessPoint {
  /** When that run finished, ISO 8601 (bucket mode: the bucket's start). */
  at: string;
  /** Seconds since the previous successful incremental run began (bucket mode: the largest in the bucket). */
  seconds: number;
}

export interface RequestsPoint {
  /** Start of the hour, ISO 8601. */
  hour: string;
  /** Requests made in that hour; a run's requests are spread evenly over its duration (the ledger counts per run). */
  requests: number;
  /** Requests in the 24 hours ending with this hour, against the daily budget. */
  rolling24h: number;
}

export interface SourceHistory {
  source: string;
  configured: boolean;
  /** 0 when `runs` holds one point per run; else the width of each bucket in seconds. */
  bucketSeconds: number;
  runs: RunPoint[];
  freshness: FreshnessPoint[];
  requests: RequestsPoint[];
  /** The rate limit's windows, each also as the most it allows in one hour; empty for an unconfigured source. */
  limits: { window: string; windowSeconds: number; limit: number; perHour: number }[];
  /** The lowest of the limits' per-hour ceilings; null when there is none. */
  hourlyLimit: number | null;
  dailyBudget: number | null;
}

export interface RecentRun {
  id: string;
  /** The logical run this row belongs to (its first row); equal to id for a run in one piece. */
  runId: string;
  source: string;
  stream: string;
  mode: string;
  status: string;
  startedAt: string;
  finishedAt: string | null;
  durationSeconds: number;
  pages: number;
  records: number;
  inserted: number;
  updated: number;
  unchanged: number;
  rejected: number;
  deleted: number;
  requests: number;
  rateLimited: number;
  waitingReason: string | null;
  waitingUntil: string | null;
  error: string | null;
  warnings: string[];
}

export interface RejectedRecordSummary {
  id: string;
  source: string;
  stream: string;
  sourceId: string | null;
  reason: string;
  timesSeen: number;
  lastRejectedAt: string;
}

export interface History {
  at: string;
  days: number;
  from: string;
  sources: SourceHistory[];
  recentRuns: RecentRun[];
  /** The open rejected records, most recent first (never their `raw`: it may hold a customer's e-mail). */
  rejected: RejectedRecordSummary[];
}

export interface ReadHistoryOptions {
  db: Db;
  config: Config;
  days: number;
  now?: Date;
}

const HOUR_MS = 3_600_000;
const BUCKETS = [60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];

type Query = Awaited<ReturnType<typeof largeQueries>>;

export async function readHistory(options: ReadHistoryOptions): Promise<History> {
  const { db, config, days } = options;
  const now = options.now ?? new Date();
  const from = new Date(now.getTime() - days * 86_400_000);
  const query = await largeQueries(db);
  const names = sources.map((s) => s.name);
  const counts = await countRuns(query, names, from, now);
  // Buckets sized so that the longest range still gives about MAX_RUN_POINTS points.
  const rangeSeconds = (now.getTime() - from.getTime()) / 1000;
  const bucket = BUCKETS.find((b) => rangeSeconds / b <= MAX_RUN_POINTS) ?? 86400;
  const bucketOf = (source: string) => ((counts.get(source) ?? 0) > MAX_RUN_POINTS ? bucket : 0);
  const [runs, freshness, hourly, recentRuns, rejected] = await Promise.all([
    Promise.all(names.map((name) => readRuns(query, name, from, now, bucketOf(name)))),
    Promise.all(names.map((name) => readFreshness(query, name, from, now, bucketOf(name)))),
    readHourlyRequests(query, names, new Date(from.getTime() - 23 * HOUR_MS), now),
    readRecentRuns(query, now),
    readRejected(db, names),
  ]);
  return {
    at: now.toISOString(),
    days,
    from: from.toISOString(),
    sources: sources.map((source, i) => {
      const section = sectionOf(config, source);
      const limits = section === null ? null : source.settings(section).limits;
      return {
        source: source.name,
        configured: section !== null,
        bucketSeconds: bucketOf(source.name),
        runs: runs[i]!,
        freshness: freshness[i]!,
        requests: rolling(hourly.get(source.name) ?? new Map(), from, now),
        ...limitsOf(limits),
      };
    }),
    recentRuns,
    rejected,
  };
}

/** Runs of each source in the range, counted up to one past MAX_RUN_POINTS: enough to choose runs or buckets. */
async function countRuns(query: Query, names: string[], from: Date, to: Date): Promise<Map<string, number>> {
  const rows = await query<{ source: string; n: number }>(
    `SELECT s.source, (SELECT count(*)::int FROM (
               SELECT 1 FROM sync_runs r WHERE r.source = s.source AND r.started_at >= $2 AND r.started_at <= $3
                LIMIT ${MAX_RUN_POINTS + 1}) upto) AS n
       FROM unnest($1::text[]) AS s(source)`,
    [names, from, to],
  );
  return new Map(rows.map((r) => [r.source, r.n]));
}

interface RunRow {
  at: Date;
  runs: number;
  mode: string | null;
  status: string | null;
  duration: number;
  records: number;
  inserted: number;
  updated: number;
  deleted: number;
  requests: number;
  failed: number;
}

async function readRuns(query: Query, source: string, from: Date, to: Date, bucket: number): Promise<RunPoint[]> {
  // A row still going (running, waiting) has no end yet: its last heartbeat is as far as it is known to have got.
  const rows =
    bucket === 0
      ? await query<RunRow>(
          `SELECT min(started_at) AS at, 1 AS runs,
                  (array_agg(mode ORDER BY id))[1] AS mode, (array_agg(status ORDER BY id DESC))[1] AS status,
                  date_part('epoch', max(COALESCE(finished_at, heartbeat_at)) - min(started_at))::float8 AS duration,
                  sum(fetched)::int AS records, sum(inserted)::int AS inserted, sum(updated)::int AS updated,
                  sum(deleted)::int AS deleted, sum(api_calls)::int AS requests, 0 AS failed
             FROM sync_runs
            WHERE source = $1 AND started_at >= $2 AND started_at <= $3
            GROUP BY COALESCE(logical_run_id, id)
            ORDER BY at, min(id)`,
          [source, from, to],
        )
      : await query<RunRow>(
          `SELECT to_timestamp(floor(date_part('epoch', started_at) / $4) * $4) AS at,
                  count(*) FILTER (WHERE logical_run_id IS NULL OR logical_run_id = id)::int AS runs,
                  NULL AS mode, NULL AS status,
                  max(date_part('epoch', COALESCE(finished_at, heartbeat_at) - started_at))::float8 AS duration,
                  sum(fetched)::int AS records, sum(inserted)::int AS inserted, sum(updated)::int AS updated,
                  sum(deleted)::int AS deleted, sum(api_calls)::int AS requests,
                  count(*) FILTER (WHERE status = 'failed')::int AS failed
             FROM sync_runs
            WHERE source = $1 AND started_at >= $2 AND started_at <= $3
            GROUP BY 1 ORDER BY 1`,
          [source, from, to, bucket],
        );
  return rows.map((r) => ({
    at: r.at.toISOString(),
    runs: r.runs,
    mode: r.mode,
    status: r.status,
    durationSeconds: Math.max(0, r.duration),
    records: r.records,
    inserted: r.inserted,
    updated: r.updated,
    deleted: r.deleted,
    requests: r.requests,
    failed: r.failed,
  }));
}

/** When the logical run of row `r` began: its first row's start, looked up only for a run resumed over several rows. */
const BEGAN = `CASE WHEN r.logical_run_id IS NULL OR r.logical_run_id = r.id THEN r.started_at
  ELSE COALESCE((SELECT f.started_at FROM sync_runs f WHERE f.id = r.logical_run_id), r.started_at) END`;

async function readFreshness(
  query: Query,
  source: string,
  from: Date,
  to: Date,
  bucket: number,
): Promise<FreshnessPoint[]> {
  // A run resumed over several jobs began when its first row did. The success just before the range is read too:
  // the first point in the range measures from it. Runs of a source never overlap, so the order of their rows'
  // starts is the order of their beginnings: the index's order, with nothing to sort.
  const rows = await query<{ at: Date; seconds: number }>(
    `WITH before AS (
       SELECT ${BEGAN} AS began
         FROM sync_runs r
        WHERE r.source = $1 AND r.mode = 'incremental' AND r.status = 'succeeded' AND r.started_at < $2
        ORDER BY r.started_at DESC LIMIT 1
     ),
     points AS (
       SELECT r.finished_at AS at,
              date_part('epoch', r.finished_at
                - COALESCE(lag(${BEGAN}) OVER (ORDER BY r.started_at), (SELECT began FROM before)))::float8 AS seconds
         FROM sync_runs r
        WHERE r.source = $1 AND r.mode = 'incremental' AND r.status = 'succeeded'
          AND r.started_at >= $2 AND r.started_at <= $3 AND r.finished_at IS NOT NULL
     )
     SELECT ${bucket === 0 ? 'at' : "to_timestamp(floor(date_part('epoch', at) / $4) * $4)"} AS at, max(seconds) AS seconds
       FROM points WHERE seconds IS NOT NULL
      GROUP BY 1 ORDER BY 1`,
    bucket === 0 ? [source, from, to] : [source, from, to, bucket],
  );
  return rows.map((r) => ({ at: r.at.toISOString(), seconds: Math.max(0, r.seconds) }));
}

async function readHourlyRequests(
  query: Query,
  names: string[],
  from: Date,
  to: Date,
): Promise<Map<string, Map<number, number>>> {
  // The ledger counts requests per run, not per request: a run's are spread evenly over the hours it spanned. Most
  // runs begin and end within one hour and are summed in SQL; the few that span hours come back whole and are
  // spread here (a series per run in SQL makes the planner expect a thousand rows a run, and plan for millions).
  // Hours are counted from 1970 in UTC, as the page draws them, whatever the session's time zone.
  const rows = await query<{ source: string; hour: number; requests: number; s: Date | null; e: Date | null }>(
    `SELECT source, floor(date_part('epoch', started_at) / 3600)::float8 AS hour, sum(api_calls)::float8 AS requests, s, e
       FROM sync_runs
      CROSS JOIN LATERAL (SELECT COALESCE(finished_at, heartbeat_at) AS ended) ends
      CROSS JOIN LATERAL (
        SELECT CASE WHEN spans THEN started_at END AS s, CASE WHEN spans THEN ended END AS e
          FROM (SELECT floor(date_part('epoch', started_at) / 3600) < floor(date_part('epoch', ended) / 3600) AS spans) x
      ) spanning
      WHERE source = ANY($1) AND started_at >= $2 AND started_at <= $3 AND api_calls > 0
      GROUP BY 1, 2, 4, 5`,
    [names, from, to],
  );
  const bySource = new Map<string, Map<number, number>>();
  const add = (source: string, hour: number, requests: number) => {
    let hours = bySource.get(source);
    if (!hours) bySource.set(source, (hours = new Map()));
    hours.set(hour, (hours.get(hour) ?? 0) + requests);
  };
  for (const row of rows) {
    if (row.s === null || row.e === null) {
      add(row.source, row.hour * HOUR_MS, row.requests);
      continue;
    }
    const start = row.s.getTime();
    const end = row.e.getTime();
    for (let hour = Math.floor(start / HOUR_MS) * HOUR_MS; hour < end; hour += HOUR_MS) {
      const overlap = Math.min(hour + HOUR_MS, end) - Math.max(hour, start);
      add(row.source, hour, (row.requests * overlap) / (end - start));
    }
  }
  return bySource;
}

/** Every hour of the range, with the requests of the 24 hours ending with it. */
function rolling(hours: Map<number, number>, from: Date, to: Date): RequestsPoint[] {
  const first = Math.floor(from.getTime() / HOUR_MS) * HOUR_MS;
  const last = Math.floor(to.getTime() / HOUR_MS) * HOUR_MS;
  const points: RequestsPoint[] = [];
  let window = 0;
  for (let h = first - 23 * HOUR_MS; h < first; h += HOUR_MS) window += hours.get(h) ?? 0;
  for (let h = first; h <= last; h += HOUR_MS) {
    window += hours.get(h) ?? 0;
    points.push({ hour: new Date(h).toISOString(), requests: round(hours.get(h) ?? 0), rolling24h: round(window) });
    window -= hours.get(h - 23 * HOUR_MS) ?? 0;
  }
  return points;
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}

/** `1s`, `60s`, `24h`: the window the way a person reads it. */
export function formatWindow(ms: number): string {
  if (ms % 86_400_000 === 0) return `${ms / 86_400_000}d`;
  if (ms % HOUR_MS === 0 && ms >= HOUR_MS) return `${ms / HOUR_MS}h`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

function limitsOf(limits: SourceLimits | null): Pick<SourceHistory, 'limits' | 'hourlyLimit' | 'dailyBudget'> {
  if (limits === null) return { limits: [], hourlyLimit: null, dailyBudget: null };
  // A rolling window of w allows at most max in any w, so at most max × ⌈1 h / w⌉ in an hour.
  const windows = limits.windows.map((w) => ({
    window: formatWindow(w.windowMs),
    windowSeconds: w.windowMs / 1000,
    limit: w.max,
    perHour: w.max * Math.ceil(HOUR_MS / w.windowMs),
  }));
  const hourly = windows.length === 0 ? null : Math.min(...windows.map((w) => w.perHour));
  return { limits: windows, hourlyLimit: hourly, dailyBudget: limits.dailyBudget };
}

interface RecentRow {
  id: string;
  run_id: string;
  source: string;
  stream: string;
  mode: string;
  status: string;
  started_at: Date;
  finished_at: Date | null;
  duration: number;
  pages: number;
  fetched: number;
  inserted: number;
  updated: number;
  unchanged: number;
  rejected: number;
  deleted: number;
  api_calls: number;
  rate_limited: number;
  waiting_reason: string | null;
  waiting_until: Date | null;
  error: string | null;
  warnings: string[];
}

async function readRecentRuns(query: Query, now: Date): Promise<RecentRun[]> {
  const rows = await query<RecentRow>(
    `SELECT id::text, COALESCE(logical_run_id, id)::text AS run_id, source, stream, mode, status, started_at,
            finished_at, date_part('epoch', COALESCE(finished_at, greatest(heartbeat_at, $1)) - started_at)::float8 AS duration,
            pages, fetched, inserted, updated, unchanged, rejected, deleted, api_calls, rate_limited,
            waiting_reason, waiting_until, error, warnings
       FROM sync_runs ORDER BY sync_runs.id DESC LIMIT 50`,
    [now],
  );
  return rows.map((r) => ({
    id: r.id,
    runId: r.run_id,
    source: r.source,
    stream: r.stream,
    mode: r.mode,
    status: r.status,
    startedAt: r.started_at.toISOString(),
    finishedAt: r.finished_at?.toISOString() ?? null,
    durationSeconds: Math.max(0, r.duration),
    pages: r.pages,
    records: r.fetched,
    inserted: r.inserted,
    updated: r.updated,
    unchanged: r.unchanged,
    rejected: r.rejected,
    deleted: r.deleted,
    requests: r.api_calls,
    rateLimited: r.rate_limited,
    waitingReason: r.waiting_reason,
    waitingUntil: r.waiting_until?.toISOString() ?? null,
    // Stored masked already; masked again since this text leaves the process for a browser.
    error: r.error === null ? null : maskPersonalData(r.error),
    warnings: r.warnings.map(maskPersonalData),
  }));
}

async function readRejected(db: Db, names: string[]): Promise<RejectedRecordSummary[]> {
  const rows = await db.rejectedRecord.findMany({
    where: { OR: names.map(openRejections) },
    orderBy: [{ lastRejectedAt: 'desc' }, { id: 'desc' }],
    take: 50,
    // Never `raw`: the record as the source sent it may hold a customer's e-mail address.
    select: {
      id: true,
      source: true,
      stream: true,
      sourceId: true,
      reason: true,
      timesSeen: true,
      lastRejectedAt: true,
    },
  });
  return rows.map((r) => ({
    id: r.id.toString(),
    source: r.source,
    stream: r.stream,
    // A Cin7 voucher's id is its code, which a person typed: it could be an e-mail address.
    sourceId: r.sourceId === null ? null : r.sourceId.replace(EMAIL, '[email]'),
    // A reason quotes the offending value.
    reason: maskPersonalData(r.reason),
    timesSeen: r.timesSeen,
    lastRejectedAt: r.lastRejectedAt.toISOString(),
  }));
}

const EMAIL = /[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/g;
