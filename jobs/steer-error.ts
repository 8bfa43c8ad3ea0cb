/**
 * Turns the engine's errors into BullMQ's controls: a shutdown puts the job back without spending an attempt,
 * a long rate-limit wait pauses the whole queue, a fatal source error fails without retry. Anything else is
 * thrown as is, for the job's exponential backoff. BullMQ keeps a failed job's message and stack in Redis, so what is
 * thrown is scrubbed of every registered secret first (a server may have echoed one into the message).
 */
import { DelayedError, UnrecoverableError, Worker, type Job, type Queue } from 'bullmq';
import { FatalSourceError, RateLimitedError } from '../src/errors.ts';
import type { Logger } from '../src/logger.ts';
import { scrubError, scrubSecrets } from '../src/secrets.ts';

export async function steerError(
  error: unknown,
  context: { job: Job; token?: string; queue: Queue; signal: AbortSignal; logger: Logger },
): Promise<never> {
  if (context.signal.aborted) {
    // Shutting down: progress is committed; the next worker resumes from there.
    await context.job.moveToDelayed(Date.now() + 1000, context.token);
    throw new DelayedError();
  }
  if (error instanceof RateLimitedError) {
    context.logger.warn({ retryAfterMs: error.retryAfterMs }, 'rate limited: pausing the queue');
    await context.queue.rateLimit(error.retryAfterMs);
    throw Worker.RateLimitError();
  }
  if (error instanceof FatalSourceError) throw new UnrecoverableError(scrubSecrets(error.message));
  throw scrubError(error);
}
