/**
 * How an operator steers a source, in SQL: a pause (`source_controls`, kept in Postgres so that it survives
 * restarts and the loss of Redis' data) and a cancellation (`sync_runs.cancel_requested_at`, which the worker reading
 * the run looks for, whatever process it runs in: jobs/cancel-watch.ts). Times are the caller's clock.
 */
import { SIDE_MODES } from '../types.ts';
import type { Db, Tx } from './client.ts';

/** A paused source: since when, and who paused it (null when unknown). */
export interface Pause {
  since: Date;
  by: string | null;
}

/** Pauses a source. A source already paused keeps its first pause (`already`: true), so `since` stays true. */
export async function pauseSource(db: Db, source: string, by: string | null, now: Date) {
  const rows = await db.$queryRaw<{ paused_at: Date }[]>`
    INSERT INTO source_controls (source, paused_at, paused_by, updated_at) VALUES (${source}, ${now}, ${by}, ${now})
    ON CONFLICT (source) DO UPDATE SET paused_at = EXCLUDED.paused_at, paused_by = EXCLUDED.paused_by, updated_at = EXCLUDED.updated_at
    WHERE source_controls.paused_at IS NULL
    RETURNING paused_at`;
  const pause = await readPause(db, source);
  return { pause: pause ?? { since: now, by }, already: rows.length === 0 };
}

/** Resumes a source; the pause it ended, or null when it was not paused. */
export async function resumeSource(db: Db, source: string, now: Date): Promise<Pause | null> {
  return db.$transaction(async (tx) => {
    const pause = await readPause(tx, source, { forUpdate: true });
    if (pause === null) return null;
    await tx.sourceControl.update({ where: { source }, data: { pausedAt: null, pausedBy: null, updatedAt: now } });
    return pause;
  });
}

export async function readPause(db: Db | Tx, source: string, options: { forUpdate?: boolean } = {}) {
  const rows = options.forUpdate
    ? await db.$queryRaw<{ pausedAt: Date | null; pausedBy: string | null }[]>`
        SELECT paused_at AS "pausedAt", paused_by AS "pausedBy" FROM source_controls WHERE source = ${source} FOR UPDATE`
    : await db.sourceControl.findMany({ where: { source }, select: { pausedAt: true, pausedBy: true } });
  const row = rows[0];
  return row?.pausedAt ? ({ since: row.pausedAt, by: row.pausedBy } satisfies Pause) : null;
}

/** A ledger row asked to stop. */
export interface CancelledRow {
  id: bigint;
  logicalRunId: bigint;
  jobId: string | null;
  mode: string;
  /** `running`: its worker stops it after its page; `cancelled`: it was waiting, so it is over now. */
  status: string;
  pages: number;
}

/**
 * Asks the live rows of a source (reading or held back) to stop: those of one job with `jobId` (whatever its mode),
 * else those of the source's main run (side runs, such as a customer run, go on). A row that is `waiting` has no
 * worker to stop it: it becomes `cancelled` at once. A row `running` keeps running until its worker sees the request.
 * A row asked once keeps the first request.
 */
export async function requestCancel(
  db: Db,
  target: { source: string; jobId?: string; by: string; now: Date },
): Promise<CancelledRow[]> {
  const { source, jobId, by, now } = target;
  const error = `cancelled by ${by} at ${now.toISOString()}`;
  return db.$queryRaw<CancelledRow[]>`
    UPDATE sync_runs SET
      cancel_requested_at = coalesce(cancel_requested_at, ${now}),
      cancel_requested_by = coalesce(cancel_requested_by, ${by}),
      status = CASE WHEN status = 'waiting' THEN 'cancelled' ELSE status END,
      finished_at = CASE WHEN status = 'waiting' THEN ${now} ELSE finished_at END,
      error = CASE WHEN status = 'waiting' THEN ${error} ELSE error END
    WHERE source = ${source} AND status IN ('running', 'waiting')
      AND (${jobId ?? null}::text IS NULL OR job_id = ${jobId ?? null})
      AND (${jobId ?? null}::text IS NOT NULL OR mode <> ALL(${[...SIDE_MODES]}::text[]))
    RETURNING id, coalesce(logical_run_id, id) AS "logicalRunId", job_id AS "jobId", mode, status, pages`;
}

/** A request to stop: when, and by whom. */
export interface CancelRequest {
  at: Date;
  by: string | null;
}

/**
 * The request to stop a job's run, if one was made: on any of its rows (`since`: no later than the job was added; an
 * indexed range). A job put back after a wait and taken again finds it here before it reads anything.
 */
export async function jobCancelRequest(
  db: Db | Tx,
  job: { source: string; jobId: string; since: Date },
): Promise<CancelRequest | null> {
  const row = await db.syncRun.findFirst({
    where: { source: job.source, startedAt: { gte: job.since }, jobId: job.jobId, cancelRequestedAt: { not: null } },
    select: { cancelRequestedAt: true, cancelRequestedBy: true },
  });
  return row && { at: row.cancelRequestedAt!, by: row.cancelRequestedBy };
}

/**
 * For a slice: the request to stop the run that owns its scan now (named in the scan's saved progress), once that run
 * has ended `cancelled`. A later run that resumes the scan owns it then, and its slices go on.
 */
export async function scanCancelRequest(
  db: Db | Tx,
  scan: { source: string; stream: string; mode: string },
): Promise<CancelRequest | null> {
  const rows = await db.$queryRaw<CancelRequest[]>`
    SELECT r.cancel_requested_at AS at, r.cancel_requested_by AS by
      FROM sync_state s
      JOIN sync_runs r ON r.id = CASE WHEN s.progress #>> ARRAY[${scan.mode}, 'runId'] ~ '^[0-9]{1,18}$'
                                      THEN (s.progress #>> ARRAY[${scan.mode}, 'runId'])::bigint END
     WHERE s.source = ${scan.source} AND s.stream = ${scan.stream} AND r.status = 'cancelled'`;
  const row = rows[0];
  return row ? { at: row.at ?? new Date(), by: row.by } : null;
}

/**
 * Ends as `cancelled` the rows of a job still marked running after its worker stopped without ending them (a second
 * Ctrl-C, a crash), once the job is taken again and finds its request. Call only while holding the lock the job's
 * runs hold: then none of them is live.
 */
export async function closeCancelledRows(
  db: Db | Tx,
  job: { source: string; jobId: string; since: Date; now: Date; error: string },
): Promise<number> {
  const { count } = await db.syncRun.updateMany({
    where: {
      source: job.source,
      startedAt: { gte: job.since },
      jobId: job.jobId,
      status: 'running',
      cancelRequestedAt: { not: null },
    },
    data: { status: 'cancelled', finishedAt: job.now, error: job.error },
  });
  return count;
}
