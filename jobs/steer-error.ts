/**
 * Turns the engine's errors into BullMQ's controls: a shutdown puts the job back without spending an attempt,
 * a long rate-limit wait pauses the whole queue, a fatal source error fails without retry. Anything else is
 * thrown as is, for the job's exponential backoff. BullMQ keeps a failed job's message and stack in Redis, so what is
 * thrown is scrubbed of every registered secret first (a server may have echoed one into the message).
 */
import { DelayedError, UnrecoverableError, Worker, type Job, type Queue } from 'bullmq';
import { CancelledError, FatalSourceError, RateLimitedError } from '../src/errors.ts';
import type { Logger } from '../src/logger.ts';
import { scrubError, scrubSecrets } from '../src/secrets.ts';
import type { WaitingReason } from '../src/status/types.ts';
import { describeWait, waitingReasonOf } from '../src/sync/waiting.ts';

/**
 * What a job held back says in its BullMQ progress (`job.progress.waiting`), for `npm run status` and `npm run sync`
 * to show while it has no ledger row running: why and until when (ISO 8601; null when unknown). Cleared when the
 * job runs again (see clearWaiting).
 */
export interface JobWaiting {
  waiting: { reason: WaitingReason; until: string | null };
}

export function waitingOf(job: Pick<Job, 'progress'>): JobWaiting['waiting'] | null {
  const progress = job.progress as Partial<JobWaiting> | number | null | undefined;
  return typeof progress === 'object' && progress !== null && progress.waiting ? progress.waiting : null;
}

export async function markWaiting(job: Job, reason: WaitingReason, until: Date | null): Promise<void> {
  const progress: JobWaiting = { waiting: { reason, until: until?.toISOString() ?? null } };
  await job.updateProgress(progress);
}

/** A job that runs again is no longer waiting. */
export async function clearWaiting(job: Job): Promise<void> {
  if (waitingOf(job) !== null) await job.updateProgress({});
}

export async function steerError(
  error: unknown,
  context: {
    job: Job;
    token?: string;
    queue: Queue;
    signal: AbortSignal;
    logger: Logger;
    /**
     * A reconciliation or backfill held back by the daily budget gives its queue to the incremental runs: its job
     * alone waits (delayed), instead of the whole queue (src/sync/budget-plan.ts).
     */
    bulk?: boolean;
  },
): Promise<never> {
  // Cancelled by an operator: over, not retried (a slice so stopped is taken again by the run that resumes its scan).
  if (context.signal.reason instanceof CancelledError)
    throw new UnrecoverableError(scrubSecrets(context.signal.reason.message));
  if (context.signal.aborted) {
    // Shutting down: progress is committed; the next worker resumes from there.
    await context.job.moveToDelayed(Date.now() + 1000, context.token);
    throw new DelayedError();
  }
  if (error instanceof RateLimitedError) {
    // Planned throttling: the queue waits, and says for what.
    const reason = waitingReasonOf(error);
    const until = new Date(Date.now() + error.retryAfterMs);
    context.logger.info(
      { waitingReason: reason, waitingUntil: until, retryAfterMs: error.retryAfterMs },
      `${describeWait(reason, until)}: ${context.bulk && reason === 'daily_budget' ? 'putting the run back' : 'pausing the queue'}`,
    );
    await markWaiting(context.job, reason, until);
    if (context.bulk && reason === 'daily_budget') {
      await context.job.moveToDelayed(until.getTime(), context.token);
      throw new DelayedError();
    }
    await context.queue.rateLimit(error.retryAfterMs);
    throw Worker.RateLimitError();
  }
  if (error instanceof FatalSourceError) throw new UnrecoverableError(scrubSecrets(error.message));
  throw scrubError(error);
}
