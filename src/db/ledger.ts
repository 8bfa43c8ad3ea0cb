/**
 * The run ledger (`sync_runs`): one row per run, its counters and how it ended. Times are the engine's
 * clock, handed in as `now` (see the glossary in src/types.ts: "clock").
 *
 * A row is one job's turn at a scan. A scan held back (a long rate-limit wait, the daily budget) or stopped
 * (a shutdown, a lost lock, a dead worker) is finished by later rows; the rows that read one scan for one job
 * are one **logical run**, linked by `logical_run_id` (the id of its first row). What the operator sees —
 * `npm run sync`, `npm run status`, the page — is the logical run; the fence against a superseded run stays
 * per row. The rule in words: docs/design.md, "One main run per source at a time".
 */
import { emptyCounters, type RunCounters, type RunMode, type SyncMode } from '../types.ts';
import { AbortedError } from '../errors.ts';
import { maskPersonalData } from '../logger.ts';
import type { WaitingReason } from '../status/types.ts';
import type { Db, Tx } from './client.ts';
import type { LockKind } from './source-lock.ts';
import { ledgerRowFields, LIVE_STATUSES, MAIN_RUNS, type LedgerRow } from './status-reads.ts';

export type RunStatus = 'running' | 'waiting' | 'succeeded' | 'failed' | 'cancelled' | 'interrupted' | 'abandoned';

/**
 * Runs left "running" by a process that died. Call only while holding the source's lock of `kind`: then no live
 * run of that kind exists, so every such row is abandoned — a main run's lock abandons main runs only, a customer
 * run's customer runs only (they go beside each other: see "main run / side run" in src/types.ts).
 */
export async function abandonRunning(
  db: Db | Tx,
  source: string,
  stream: string,
  now: Date,
  kind: LockKind = 'main',
): Promise<number> {
  const mode = kind === 'main' ? MAIN_RUNS.mode : { equals: kind };
  const { count } = await db.syncRun.updateMany({
    where: { source, stream, status: 'running', mode },
    data: { status: 'abandoned', finishedAt: now, error: 'the worker running it stopped before it finished' },
  });
  return count;
}

/**
 * Rows left `waiting` when a run of their source starts: whoever held them back, this run now has the source,
 * so they wait no more. They become `interrupted`, finished when their work stopped (their last heartbeat);
 * their job, when it comes back, continues its logical run in a new row (see startRun). Call only while
 * holding the source's lock, like abandonRunning.
 */
export async function closeWaiting(db: Db | Tx, source: string, stream: string): Promise<number> {
  return db.$executeRaw`
    UPDATE sync_runs SET status = 'interrupted', finished_at = heartbeat_at
    WHERE status = 'waiting' AND source = ${source} AND stream = ${stream}`;
}

export async function startRun(
  db: Db | Tx,
  run: {
    source: string;
    stream: string;
    mode: RunMode;
    watermarkBefore: Date | null;
    jobId?: string;
    worker?: string;
    startedAt: Date;
    /** The row that owned the scan this run resumes (named in the scan's saved state), if any. */
    resumesRunId?: bigint | null;
  },
): Promise<{ runId: bigint; logicalRunId: bigint }> {
  const { resumesRunId: _owner, ...fields } = run;
  // The id is drawn first so that a row that starts a logical run names itself in the same insert.
  const [{ id }] = await db.$queryRaw<
    [{ id: bigint }]
  >`SELECT nextval(pg_get_serial_sequence('sync_runs', 'id')) AS id`;
  const logicalRunId = (await continuedRun(db, run)) ?? id;
  await db.syncRun.create({ data: { ...fields, id, logicalRunId, status: 'running', heartbeatAt: run.startedAt } });
  return { runId: id, logicalRunId };
}

/**
 * The logical run a new row continues: that of the row owning the scan it resumes, when that row was the same
 * job's (a job put back after a wait, a shutdown or a lost lock, or retried after a failure) — never another
 * job's, whose totals are its own. A primary-key read: the ledger of a year of runs does not slow it.
 */
async function continuedRun(
  db: Db | Tx,
  run: { source: string; stream: string; jobId?: string; resumesRunId?: bigint | null },
): Promise<bigint | null> {
  if (!run.jobId || run.resumesRunId === undefined || run.resumesRunId === null) return null;
  const owner = await db.syncRun.findUnique({
    where: { id: run.resumesRunId },
    select: { source: true, stream: true, jobId: true, logicalRunId: true, id: true },
  });
  if (!owner || owner.jobId !== run.jobId || owner.source !== run.source || owner.stream !== run.stream) return null;
  return owner.logicalRunId ?? owner.id;
}

/** Sums the counters of every row of a logical run: what the operator asked for, however many jobs read it. */
export async function logicalRunTotals(db: Db | Tx, logicalRunId: bigint): Promise<RunCounters> {
  const { _sum } = await db.syncRun.aggregate({
    where: { logicalRunId },
    _sum: {
      pages: true,
      fetched: true,
      inserted: true,
      updated: true,
      unchanged: true,
      rejected: true,
      deleted: true,
      apiCalls: true,
      rateLimited: true,
    },
  });
  const totals = emptyCounters();
  for (const key of Object.keys(totals) as (keyof RunCounters)[]) totals[key] = _sum[key] ?? 0;
  return totals;
}

/** When a logical run began (its first row), in epoch ms; `fallback` when the row is gone. */
export async function logicalRunStart(db: Db | Tx, logicalRunId: bigint, fallback: number): Promise<number> {
  const first = await db.syncRun.findUnique({ where: { id: logicalRunId }, select: { startedAt: true } });
  return first?.startedAt.getTime() ?? fallback;
}

/**
 * Records how many records the scan expects, once per row: a hint (a server's total may lie, see
 * docs/design.md "When an API misbehaves") for progress and ETA, never a stop.
 */
export async function recordEstimate(db: Db | Tx, runId: bigint, estimatedTotal: number): Promise<void> {
  if (!Number.isSafeInteger(estimatedTotal) || estimatedTotal < 0 || estimatedTotal > 2_147_483_647) return;
  await db.syncRun.updateMany({ where: { id: runId, estimatedTotal: null }, data: { estimatedTotal } });
}

/** The error of a run that a later run has marked abandoned: it stops, and nothing more of it commits. */
export const supersededError = (runId: bigint) =>
  new AbortedError(
    `run ${runId} is no longer running (a later run took over its source); nothing more of it is committed`,
  );

/**
 * Counts a committed page in the run, in the page's transaction — and fences it: a run that a later run
 * has marked abandoned (its lock was lost, see src/db/source-lock.ts) may not commit anything more, so the
 * transaction is rolled back. Without counters, only the heartbeat and the fence (a sliced scan's progress).
 */
export async function recordPage(tx: Tx, runId: bigint, now: Date, counters?: RunCounters): Promise<void> {
  const { count } = await tx.syncRun.updateMany({
    where: { id: runId, status: 'running' },
    data: { ...counters, heartbeatAt: now },
  });
  if (count === 0) throw supersededError(runId);
}

/**
 * Adds a slice's page to the counters of the run that currently owns the scan (named in the scan's saved
 * state, see src/db/stream-state.ts), in the page's own transaction: every committed page is counted once,
 * in the run that was current when it committed, whichever process read it.
 */
export async function countSlicePage(
  tx: Tx,
  scan: { source: string; stream: string; mode: SyncMode },
  delta: RunCounters,
  now: Date,
): Promise<void> {
  await tx.$executeRaw`
    UPDATE sync_runs SET
      pages = pages + ${delta.pages}, fetched = fetched + ${delta.fetched}, inserted = inserted + ${delta.inserted},
      updated = updated + ${delta.updated}, unchanged = unchanged + ${delta.unchanged}, rejected = rejected + ${delta.rejected},
      api_calls = api_calls + ${delta.apiCalls}, rate_limited = rate_limited + ${delta.rateLimited}, heartbeat_at = ${now}
    WHERE id = (SELECT (progress #>> ARRAY[${scan.mode}, 'runId'])::bigint FROM sync_state WHERE source = ${scan.source} AND stream = ${scan.stream})`;
}

/** Reads back a run's counters (a sliced run's pages were counted by the slices). */
export async function runCounters(db: Db | Tx, runId: bigint): Promise<RunCounters> {
  const row = await db.syncRun.findUniqueOrThrow({ where: { id: runId } });
  const { pages, fetched, inserted, updated, unchanged, rejected, deleted, apiCalls, rateLimited } = row;
  return { pages, fetched, inserted, updated, unchanged, rejected, deleted, apiCalls, rateLimited };
}

/**
 * Ends a run. `counters` are written as they are, or — with `add` — added to what the row already holds
 * (a sliced run, whose pages the slices counted). Only a run still marked running can end: one a later
 * run marked abandoned keeps that status, and false is returned (the caller must then not move the
 * watermark: see supersededError). A run that ends `waiting` (with `waiting`: why, until when) is not
 * finished: its logical run goes on in a later row, and the next run of its source closes it (closeWaiting).
 */
export async function finishRun(
  db: Db | Tx,
  runId: bigint,
  status: Exclude<RunStatus, 'running'>,
  counters: RunCounters,
  now: Date,
  extra: {
    watermarkAfter?: Date | null;
    error?: string;
    warnings?: string[];
    add?: boolean;
    waiting?: { reason: WaitingReason; until: Date | null };
  } = {},
): Promise<boolean> {
  const values = extra.add
    ? Object.fromEntries(Object.entries(counters).map(([key, value]) => [key, { increment: value }]))
    : counters;
  const { count } = await db.syncRun.updateMany({
    where: { id: runId, status: 'running' },
    data: {
      ...values,
      status,
      finishedAt: status === 'waiting' ? null : now,
      heartbeatAt: now,
      waitingReason: extra.waiting?.reason,
      waitingUntil: extra.waiting?.until,
      watermarkAfter: extra.watermarkAfter,
      error: extra.error === undefined ? undefined : maskPersonalData(extra.error).slice(0, 4000),
      warnings:
        extra.warnings === undefined
          ? undefined
          : extra.warnings.map((warning) => maskPersonalData(warning).slice(0, 1000)),
    },
  });
  return count === 1;
}

/**
 * The rows a job attempt finished, for the metrics (src/metrics/observe-runs.ts): those of its job that started
 * since `since` and are over or held (`waiting`), and those marked abandoned since that had started before (only
 * the lock holder abandons runs). One small query per attempt, never per page.
 */
export function runsEndedByAttempt(db: Db | Tx, attempt: { source: string; jobId: string | undefined; since: Date }) {
  const { source, jobId, since } = attempt;
  return db.syncRun.findMany({
    where: {
      source,
      OR: [
        ...(jobId === undefined
          ? []
          : [{ jobId, startedAt: { gte: since }, status: { notIn: ['running', 'abandoned'] } }]),
        { status: 'abandoned', finishedAt: { gte: since }, startedAt: { lt: since } },
      ],
    },
    select: {
      mode: true,
      status: true,
      startedAt: true,
      finishedAt: true,
      inserted: true,
      updated: true,
      unchanged: true,
      rejected: true,
      deleted: true,
    },
  });
}

/**
 * The rows of one job, oldest first. Found by source and start (`since`: no later than the job was added; an
 * indexed range, so the ledger of a year of runs does not slow it), then by job id.
 */
export function jobLedgerRows(db: Db | Tx, source: string, jobId: string, since: Date): Promise<LedgerRow[]> {
  return db.syncRun.findMany({
    where: { source, startedAt: { gte: since }, jobId },
    orderBy: { id: 'asc' },
    select: ledgerRowFields,
  });
}

/** The newest row of a source's main runs that is not over (reading, or held back), if any. */
export function liveLedgerRow(db: Db | Tx, source: string): Promise<LedgerRow | null> {
  return db.syncRun.findFirst({
    where: { source, status: { in: LIVE_STATUSES }, ...MAIN_RUNS },
    orderBy: { id: 'desc' },
    select: ledgerRowFields,
  });
}

/** The rows that continue the logical run `logicalRunId` (its first row included: it names itself), oldest first. */
export function logicalRunLedgerRows(db: Db | Tx, logicalRunId: bigint): Promise<LedgerRow[]> {
  return db.syncRun.findMany({ where: { logicalRunId }, orderBy: { id: 'asc' }, select: ledgerRowFields });
}
