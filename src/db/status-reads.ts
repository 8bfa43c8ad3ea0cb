/**
 * What the status report reads from Postgres: the run ledger, the stream state and the rejected records of one
 * source. Every query walks an index (sync_runs by (source, stream, started_at), (source, started_at), (status)
 * and (logical_run_id); rejected_records by source), so a ledger of a year of 5-minute runs — 100,000 rows and
 * more per source — costs no more to read than a young one.
 */
import type { Db } from './client.ts';
import type { Prisma } from '../generated/prisma/client.ts';

/** Ledger statuses of a run that is not over: reading, or held back. */
export const LIVE_STATUSES = ['running', 'waiting'];

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

/** The rows of a source's runs that are not over, newest first. */
export function liveRows(db: Db, source: string): Promise<LedgerRow[]> {
  return db.syncRun.findMany({
    where: { status: { in: LIVE_STATUSES }, source },
    orderBy: { startedAt: 'desc' },
    select: ledgerRowFields,
  });
}

/** The newest row of a source, whatever its status (an interrupted run's row says where a held run stands). */
export function latestRow(db: Db, source: string): Promise<LedgerRow | null> {
  return db.syncRun.findFirst({ where: { source }, orderBy: { startedAt: 'desc' }, select: ledgerRowFields });
}

/** Every row of one logical run (a run resumed by later jobs spans several), oldest first. */
export function logicalRunRows(db: Db, logicalRunId: bigint): Promise<LedgerRow[]> {
  return db.syncRun.findMany({
    where: { OR: [{ id: logicalRunId }, { logicalRunId }] },
    orderBy: { startedAt: 'asc' },
    select: ledgerRowFields,
  });
}

export interface Failures {
  /** Failed logical runs since the last success (cancelled, interrupted and abandoned runs neither count nor reset). */
  count: number;
  last: { at: Date; message: string } | null;
}

export async function failuresSinceSuccess(db: Db, source: string): Promise<Failures> {
  const success = await db.syncRun.findFirst({
    where: { source, status: 'succeeded' },
    orderBy: { startedAt: 'desc' },
    select: { startedAt: true },
  });
  const since = success?.startedAt ?? new Date(0);
  const [counted, last] = await Promise.all([
    db.$queryRaw<{ count: bigint }[]>`
      SELECT count(DISTINCT coalesce(logical_run_id, id)) AS count FROM sync_runs
      WHERE source = ${source} AND started_at > ${since} AND status = 'failed'`,
    db.syncRun.findFirst({
      where: { source, status: 'failed', startedAt: { gt: since } },
      orderBy: { startedAt: 'desc' },
      select: { finishedAt: true, startedAt: true, error: true },
    }),
  ]);
  return {
    count: Number(counted[0]?.count ?? 0),
    last: last && { at: last.finishedAt ?? last.startedAt, message: last.error ?? 'failed without a message' },
  };
}

/**
 * 429 answers of the last hour, as the ledger counts them per run: those of the runs that started in the hour,
 * plus those of runs still going that started before it (a run's 429s carry no time of their own).
 */
export async function recentRateLimited(db: Db, source: string, since: Date): Promise<number> {
  const sum = await db.syncRun.aggregate({
    where: { source, OR: [{ startedAt: { gte: since } }, { status: { in: LIVE_STATUSES } }] },
    _sum: { rateLimited: true },
  });
  return sum._sum.rateLimited ?? 0;
}

/**
 * Which rejected records are still open. Every one, for now: nothing resolves them yet. When replay marks them
 * (a `resolved_at` column), this is the one place that adds `resolvedAt: null`.
 */
export function openRejections(source: string): Prisma.RejectedRecordWhereInput {
  return { source };
}

export function countOpenRejections(db: Db, source: string): Promise<number> {
  return db.rejectedRecord.count({ where: openRejections(source) });
}

/**
 * The source's streams as the state table knows them: each one's last success, and when the logical run of its
 * newest successful incremental run began (its first row's start, when later jobs resumed it) — how old the
 * newest change we hold can be. One statement: the status page reads this on every refresh.
 */
export function streamStates(
  db: Db,
  source: string,
): Promise<{ stream: string; lastSuccessAt: Date | null; freshFrom: Date | null }[]> {
  return db.$queryRaw`
    SELECT s.stream, s.last_success_at AS "lastSuccessAt", (
      SELECT coalesce(first.started_at, r.started_at) FROM sync_runs r
      LEFT JOIN sync_runs first ON first.id = r.logical_run_id
      WHERE r.source = s.source AND r.stream = s.stream AND r.mode = 'incremental' AND r.status = 'succeeded'
      ORDER BY r.started_at DESC LIMIT 1
    ) AS "freshFrom"
    FROM sync_state s WHERE s.source = ${source}`;
}
