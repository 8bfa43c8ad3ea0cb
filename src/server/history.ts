/**
 * What the status page's charts draw, read from the ledger (`sync_runs`) and `rejected_records`: per source its
 * runs (or, when there are many, per time bucket, aggregated in SQL), its freshness over time, and its requests
 * per hour against the limits with the rolling 24 h total against the daily budget. Every query reads a source's
 * rows by the (source, started_at) index, so a year of 5-minute runs costs no more than the days asked for.
 *
 * The statements are in src/db/history-reads.ts; the shapes, the page's own, are here.
 */
import type { Config, SourceLimits } from '../config.ts';
import { largeQueries, type Db, type LargeQueries } from '../db/client.ts';
import {
  countRunsUpTo,
  readFreshnessRows,
  readHourlyRequestRows,
  readRecentRunRows,
  readRejectedRows,
  readRunRows,
  type RunRow,
} from '../db/history-reads.ts';
import { maskPersonalData } from '../logger.ts';
import { sectionOf, sources } from '../sources/index.ts';

/** Beyond this many runs of a source in the range, runs are aggregated into time buckets. */
export const MAX_RUN_POINTS = 1000;
/** The longest range /api/history serves. */
export const MAX_DAYS = 400;

/** One run, or one bucket of runs, as the chart draws it: its fields are the query's (RunRow). */
export interface RunPoint extends Omit<RunRow, 'at'> {
  /** When the run (or the bucket) began, ISO 8601. */
  at: string;
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
/** How many recent runs, and how many rejected records, the page lists. */
const LISTED = 50;

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
    Promise.all(names.map(async (name) => (await readRunRows(query, name, from, now, bucketOf(name))).map(runPoint))),
    Promise.all(
      names.map(async (name) => (await readFreshnessRows(query, name, from, now, bucketOf(name))).map(freshnessPoint)),
    ),
    readHourlyRequests(query, names, new Date(from.getTime() - 23 * HOUR_MS), now),
    readRecentRuns(query, now),
    readRejected(query, names),
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
async function countRuns(query: LargeQueries, names: string[], from: Date, to: Date): Promise<Map<string, number>> {
  const rows = await countRunsUpTo(query, names, from, to, MAX_RUN_POINTS + 1);
  return new Map(rows.map((r) => [r.source, r.n]));
}

function runPoint(row: RunRow): RunPoint {
  return { ...row, at: row.at.toISOString(), durationSeconds: Math.max(0, row.durationSeconds) };
}

function freshnessPoint(row: { at: Date; seconds: number }): FreshnessPoint {
  return { at: row.at.toISOString(), seconds: Math.max(0, row.seconds) };
}

async function readHourlyRequests(
  query: LargeQueries,
  names: string[],
  from: Date,
  to: Date,
): Promise<Map<string, Map<number, number>>> {
  // The ledger counts requests per run, not per request: a run's are spread evenly over the hours it spanned. Most
  // runs begin and end within one hour and are summed in SQL; the few that span hours come back whole and are
  // spread here.
  const rows = await readHourlyRequestRows(query, names, from, to);
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

async function readRecentRuns(query: LargeQueries, now: Date): Promise<RecentRun[]> {
  const rows = await readRecentRunRows(query, now, LISTED);
  return rows.map((r) => ({
    id: r.id,
    runId: r.runId,
    source: r.source,
    stream: r.stream,
    mode: r.mode,
    status: r.status,
    startedAt: r.startedAt.toISOString(),
    finishedAt: r.finishedAt?.toISOString() ?? null,
    durationSeconds: Math.max(0, r.durationSeconds),
    pages: r.pages,
    records: r.fetched,
    inserted: r.inserted,
    updated: r.updated,
    unchanged: r.unchanged,
    rejected: r.rejected,
    deleted: r.deleted,
    requests: r.apiCalls,
    rateLimited: r.rateLimited,
    waitingReason: r.waitingReason,
    waitingUntil: r.waitingUntil?.toISOString() ?? null,
    // Stored masked already; masked again since this text leaves the process for a browser.
    error: r.error === null ? null : maskPersonalData(r.error),
    warnings: r.warnings.map(maskPersonalData),
  }));
}

async function readRejected(query: LargeQueries, names: string[]): Promise<RejectedRecordSummary[]> {
  const rows = await readRejectedRows(query, names, LISTED);
  return rows.map((r) => ({
    id: r.id,
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
