/**
 * What the status report reads from Postgres: the run ledger, the stream state and the rejected records of one
 * source. Every query walks an index (sync_runs by (source, stream, started_at), (source, started_at), (status)
 * and (logical_run_id); rejected_records by source), so a ledger of a year of 5-minute runs — 100,000 rows and
 * more per source — costs no more to read than a young one.
 */
import type { Db } from './client.ts';
import { Prisma } from '../generated/prisma/client.ts';
import { SIDE_MODES } from '../types.ts';

/** Ledger statuses of a run that is not over: reading, or held back. */
export const LIVE_STATUSES = ['running', 'waiting'];

/**
 * The rows of a source's main runs (see "main run / side run" in src/types.ts): what its state, its current run, its
 * failures and its freshness are read from. A customer run goes beside them and says nothing of how the source stands.
 */
export const MAIN_RUNS = { mode: { notIn: [...SIDE_MODES] } } satisfies Prisma.SyncRunWhereInput;

/** A ledger row as the status report and a watched run (jobs/run-once.ts) read it: where it stands, how far it got. */
export interface LedgerRow {
  id: bigint;
  logicalRunId: bigint | null;
  jobId: string | null;
  stream: string;
  mode: string;
  status: string;
  startedAt: Date;
  finishedAt: Date | null;
  heartbeatAt: Date;
  pages: number;
  fetched: number;
  apiCalls: number;
  estimatedTotal: number | null;
  waitingReason: string | null;
  waitingUntil: Date | null;
  error: string | null;
}

export const ledgerRowFields = {
  id: true,
  logicalRunId: true,
  jobId: true,
  stream: true,
  mode: true,
  status: true,
  startedAt: true,
  finishedAt: true,
  heartbeatAt: true,
  pages: true,
  fetched: true,
  apiCalls: true,
  estimatedTotal: true,
  waitingReason: true,
  waitingUntil: true,
  error: true,
} satisfies Prisma.SyncRunSelect;

/**
 * The columns of a LedgerRow. The status report's reads are written in SQL rather than through Prisma's query builder:
 * the report is read on every refresh of every page and `status --watch`, and each builder query costs several
 * milliseconds of CPU to compile (bench/README.md, "Operator views") where the statement itself takes a fraction of one.
 */
const LEDGER_ROW = Prisma.sql`id, logical_run_id AS "logicalRunId", job_id AS "jobId", stream, mode, status,
  started_at AS "startedAt", finished_at AS "finishedAt", heartbeat_at AS "heartbeatAt", pages, fetched,
  api_calls AS "apiCalls", estimated_total AS "estimatedTotal", waiting_reason AS "waitingReason",
  waiting_until AS "waitingUntil", error`;

/** `mode` is a main run's (MAIN_RUNS, in SQL). */
const MAIN_RUN = Prisma.sql`mode <> ALL(${[...SIDE_MODES]}::text[])`;

/** The rows of a source's main runs that are not over, newest first. */
export function liveRows(db: Db, source: string): Promise<LedgerRow[]> {
  return db.$queryRaw<LedgerRow[]>`
    SELECT ${LEDGER_ROW} FROM sync_runs
     WHERE status = ANY(${LIVE_STATUSES}::text[]) AND source = ${source} AND ${MAIN_RUN}
     ORDER BY started_at DESC`;
}

/** The newest main run's row of a source, whatever its status (an interrupted run's row says where a held run stands). */
export async function latestRow(db: Db, source: string): Promise<LedgerRow | null> {
  const rows = await db.$queryRaw<LedgerRow[]>`
    SELECT ${LEDGER_ROW} FROM sync_runs WHERE source = ${source} AND ${MAIN_RUN} ORDER BY started_at DESC LIMIT 1`;
  return rows[0] ?? null;
}

/** Every row of one logical run (a run resumed by later jobs spans several), oldest first. */
export function logicalRunRows(db: Db, logicalRunId: bigint): Promise<LedgerRow[]> {
  return db.$queryRaw<LedgerRow[]>`
    SELECT ${LEDGER_ROW} FROM sync_runs WHERE id = ${logicalRunId} OR logical_run_id = ${logicalRunId}
     ORDER BY started_at`;
}

export interface Failures {
  /** Failed logical main runs since the last success (cancelled, interrupted and abandoned runs neither count nor reset). */
  count: number;
  last: { at: Date; message: string } | null;
}

export async function failuresSinceSuccess(db: Db, source: string): Promise<Failures> {
  const [row] = await db.$queryRaw<
    { count: number; lastAt: Date | null; lastError: string | null; anyFailed: boolean }[]
  >`
    WITH since AS (
      SELECT COALESCE((SELECT started_at FROM sync_runs
                        WHERE source = ${source} AND status = 'succeeded' AND ${MAIN_RUN}
                        ORDER BY started_at DESC LIMIT 1), '-infinity'::timestamptz) AS at
    ),
    failed AS (
      SELECT r.* FROM sync_runs r, since
       WHERE r.source = ${source} AND r.started_at > since.at AND r.status = 'failed' AND ${MAIN_RUN}
    )
    SELECT (SELECT count(DISTINCT COALESCE(logical_run_id, id))::int FROM failed) AS count,
           last.at AS "lastAt", last.error AS "lastError", last.at IS NOT NULL AS "anyFailed"
      FROM (SELECT 1) one
      LEFT JOIN LATERAL (SELECT COALESCE(finished_at, started_at) AS at, error FROM failed
                          ORDER BY started_at DESC LIMIT 1) last ON true`;
  return {
    count: row?.count ?? 0,
    last: row?.anyFailed ? { at: row.lastAt!, message: row.lastError ?? 'failed without a message' } : null,
  };
}

/**
 * 429 answers of the last hour, as the ledger counts them per run: those of the runs that started in the hour,
 * plus those of runs still going that started before it (a run's 429s carry no time of their own).
 */
export async function recentRateLimited(db: Db, source: string, since: Date): Promise<number> {
  const [row] = await db.$queryRaw<{ n: number }[]>`
    SELECT COALESCE(sum(rate_limited), 0)::int AS n FROM sync_runs
     WHERE source = ${source} AND (started_at >= ${since} OR status = ANY(${LIVE_STATUSES}::text[]))`;
  return row?.n ?? 0;
}

/**
 * The rejected records still open (resolved_at null): not resolved by a replay, by a later valid version or as gone
 * (see "rejection / resolution" in src/types.ts).
 */
export async function countOpenRejections(db: Db, source: string): Promise<number> {
  const [row] = await db.$queryRaw<{ n: number }[]>`
    SELECT count(*)::int AS n FROM rejected_records WHERE source = ${source} AND resolved_at IS NULL`;
  return row?.n ?? 0;
}

/** A stream as the status report reads it from the state table. */
export interface StreamStatusRow {
  stream: string;
  lastSuccessAt: Date | null;
  freshFrom: Date | null;
  /** What is known of a page size found at run time (src/db/page-size.ts). */
  pageSizeAccepted: number | null;
  pageSizeRefused: number | null;
  pageSizeCheckedAt: Date | null;
}

/**
 * The source's streams as the state table knows them: each one's last success, and when the logical run of its
 * newest successful incremental run began (its first row's start, when later jobs resumed it) — how old the
 * newest change we hold can be — and what is known of a page size found at run time. One statement: the status
 * page reads this on every refresh.
 */
export function streamStates(db: Db, source: string): Promise<StreamStatusRow[]> {
  return db.$queryRaw`
    SELECT s.stream, s.last_success_at AS "lastSuccessAt", s.page_size_accepted AS "pageSizeAccepted",
           s.page_size_refused AS "pageSizeRefused", s.page_size_checked_at AS "pageSizeCheckedAt", (
      SELECT coalesce(first.started_at, r.started_at) FROM sync_runs r
      LEFT JOIN sync_runs first ON first.id = r.logical_run_id
      WHERE r.source = s.source AND r.stream = s.stream AND r.mode = 'incremental' AND r.status = 'succeeded'
      ORDER BY r.started_at DESC LIMIT 1
    ) AS "freshFrom"
    FROM sync_state s WHERE s.source = ${source}`;
}
