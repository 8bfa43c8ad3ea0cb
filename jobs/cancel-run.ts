/**
 * Cancelling a run, from a command (voucher-sync cancel, Ctrl-C on voucher-sync sync) in any process. The request is
 * written to Postgres first (src/db/source-control.ts), so that it holds whatever happens next: a row `running` is
 * stopped by its worker after its page (jobs/cancel-watch.ts); a row `waiting` has no worker and is cancelled at once;
 * and a job that has not begun, or is back in the queue after a wait, is removed from it — or, taken by a worker in
 * between, finds the request before it reads anything and completes as cancelled.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Job, Queue } from 'bullmq';
import type { Db } from '../src/db/client.ts';
import { requestCancel, type CancelledRow } from '../src/db/source-control.ts';

/** What became of the request. */
export type CancelOutcome =
  /** Its worker stops it after its current page: `rows` are the ones asked (some may already be over: waiting). */
  | { kind: 'requested'; rows: CancelledRow[] }
  /** It had not begun, or was back in the queue: removed, and its waiting rows (if any) cancelled. */
  | { kind: 'removed'; rows: CancelledRow[] }
  /** Nothing left to stop: it had finished, or no such job. */
  | { kind: 'finished' };

const QUEUED = ['waiting', 'delayed', 'prioritized', 'waiting-children', 'wait'];

/** Removes a job that no worker holds; false when one took it meanwhile (or it is gone). */
async function removeQueued(job: Job): Promise<boolean> {
  if (!QUEUED.includes(await job.getState())) return false;
  try {
    await job.remove();
    return true;
  } catch {
    // A worker took it between the two calls: it finds the request in Postgres.
    return false;
  }
}

/**
 * Cancels the run of one job (the run a `sync` command queued). A job a worker has just taken has no ledger row for
 * a moment: the request is made again until its row exists, for at most `waitMs`.
 */
export async function cancelJobRun(
  db: Db,
  queue: Queue,
  target: { source: string; jobId: string; by: string },
  options: { waitMs?: number; pollMs?: number } = {},
): Promise<CancelOutcome> {
  const deadline = Date.now() + (options.waitMs ?? 15_000);
  for (;;) {
    const rows = await requestCancel(db, { ...target, now: new Date() });
    const job = await queue.getJob(target.jobId);
    if (!job) return rows.length > 0 ? { kind: 'removed', rows } : { kind: 'finished' };
    if (await removeQueued(job)) return { kind: 'removed', rows };
    const state = await job.getState();
    if (state === 'completed' || state === 'failed' || state === 'unknown') return { kind: 'finished' };
    if (rows.some((row) => row.status === 'running')) return { kind: 'requested', rows };
    if (Date.now() > deadline) return { kind: 'requested', rows };
    await sleep(options.pollMs ?? 200);
  }
}

/**
 * Cancels the source's main run under way (side runs, such as a customer run, go on). Its rows that waited are
 * cancelled at once and their jobs removed from the queue; a row that reads is stopped by its worker. `queue` null:
 * Redis is out of reach, so the jobs stay queued — and complete as cancelled, reading nothing, when a worker takes
 * them. Returns the rows asked.
 */
export async function cancelSourceRun(
  db: Db,
  queue: Queue | null,
  target: { source: string; by: string },
): Promise<CancelledRow[]> {
  const rows = await requestCancel(db, { ...target, now: new Date() });
  if (queue)
    for (const jobId of new Set(rows.filter((r) => r.status === 'cancelled' && r.jobId).map((r) => r.jobId!))) {
      const job = await queue.getJob(jobId);
      if (job) await removeQueued(job);
    }
  return rows;
}
