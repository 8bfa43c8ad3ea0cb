/**
 * One copy of a long scan at a time. A reconciliation that needs more than a day's budget is still pending — its job
 * put back until the budget frees requests (src/sync/budget-plan.ts) — when its schedule comes round again; the new
 * scheduled job would only resume the same saved scan beside it and, once that finished, start a second scan at
 * once. So a scheduled job of a bulk mode finds the pending one and is skipped instead.
 */
import type { Job, Queue } from 'bullmq';
import { shareOfMode } from '../src/sync/budget-plan.ts';
import { emptyCounters } from '../src/types.ts';
import type { SyncJobData, SyncJobResult } from './queues.ts';
import { waitingOf } from './steer-error.ts';

/**
 * Another job of the same bulk mode that has started and is pending again (put back: it waits for the budget, a
 * rate limit, a busy source), when `job` is a scheduled one; else null. A job not yet started is not one: the
 * scheduler's own next occurrence waits in the queue as a delayed job from the moment this one started.
 */
export async function pendingCopyOf(
  queue: Queue<SyncJobData, SyncJobResult>,
  job: Job<SyncJobData, SyncJobResult>,
): Promise<Job<SyncJobData, SyncJobResult> | null> {
  if (job.data.requestedBy !== 'scheduler' || shareOfMode(job.data.mode) !== 'bulk') return null;
  const pending = await queue.getJobs(['delayed', 'waiting', 'prioritized'], 0, 99);
  const started = (other: Job) => Boolean(other.processedOn) || other.attemptsStarted > 0 || waitingOf(other) !== null;
  return (
    pending.find((other) => other && other.id !== job.id && other.data?.mode === job.data.mode && started(other)) ??
    null
  );
}

/** What a skipped job returns: no run, and why. */
export function skippedResult(source: string, job: Job<SyncJobData>, copy: Job): SyncJobResult {
  return {
    runId: '',
    source,
    mode: job.data.mode,
    counters: emptyCounters(),
    watermarkAfter: null,
    durationMs: 0,
    stop: { kind: 'skipped', reason: `job ${copy.id} of the same ${job.data.mode} scan is still pending` },
  };
}
