/**
 * One BullMQ queue per source, named after the source, under the configured key prefix. At most one job
 * of a queue is active at a time across every worker process (global concurrency 1); the source lock in
 * Postgres backs this up should a stalled job ever be picked up twice.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue, type JobsOptions } from 'bullmq';
import { Redis } from 'ioredis';
import type { JobsConfig } from '../src/config.ts';
import type { RunCounters, SyncMode } from '../src/types.ts';

export interface SyncJobData {
  mode: SyncMode;
  requestedBy: 'scheduler' | 'cli' | 'demo';
  /** A backfill's range, UTC ISO 8601 (`to` exclusive); only with mode `backfill`. */
  range?: { from: string; to: string };
}

/** What a completed job returns (kept in Redis as JSON, read by `npm run sync`). */
export interface SyncJobResult {
  runId: string;
  source: string;
  mode: SyncMode;
  counters: RunCounters;
  watermarkAfter: string | null;
  durationMs: number;
  /**
   * Set when the job did not run to its end: `cancelled` (voucher-sync cancel, Ctrl-C on sync: the run stopped after
   * its page, and is not retried) or `skipped` (a scheduled run of a paused source); `reason` says by whom and when.
   */
  stop?: { kind: 'cancelled' | 'skipped'; reason: string };
}

/** A Redis connection as BullMQ wants it for blocking commands. */
export function createRedis(url: string, onError?: (error: Error) => void): Redis {
  const redis = new Redis(url, { maxRetriesPerRequest: null, lazyConnect: false });
  // ioredis reconnects by itself; without a listener it prints every failed attempt as an unhandled error.
  redis.on('error', onError ?? (() => undefined));
  return redis;
}

/** Redis could not be reached within the wait; the message names REDIS_URL without its password. */
export class RedisUnreachableError extends Error {
  override readonly name = 'RedisUnreachableError';
}

/** The URL as it may be shown: its password dropped (the user name is kept, it says which account). */
export function redisUrlForDisplay(url: string): string {
  try {
    const shown = new URL(url);
    shown.password = '';
    return shown.toString().replace(/\/$/, '');
  } catch {
    return 'an unreadable URL';
  }
}

export interface WaitForRedisOptions {
  /** How long to keep trying, in ms (default 15 s: a Redis restarting comes back in that time). */
  timeoutMs?: number;
  /** Pause between attempts, in ms (default 500). */
  retryMs?: number;
  /** Told of the first failed attempt, so that a long wait is not a silent one. */
  onFirstFailure?(reason: string): void;
}

/** One attempt: connect, PING, disconnect. No automatic reconnection, so a failure is reported, not retried. */
async function ping(url: string, connectTimeout: number): Promise<void> {
  const redis = new Redis(url, {
    lazyConnect: true,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    connectTimeout,
  });
  // The connection's own error (ECONNREFUSED, WRONGPASS) says more than the "Connection is closed" connect rejects with.
  let cause: Error | undefined;
  redis.on('error', (error: Error) => (cause ??= error));
  try {
    await redis.connect();
    await redis.ping();
  } catch (error) {
    throw cause ?? error;
  } finally {
    redis.disconnect();
  }
}

/**
 * Waits until Redis answers PING, for at most `timeoutMs`; then throws RedisUnreachableError, one line naming
 * REDIS_URL without its password. A refused password fails at once: waiting cannot fix it. Commands that need
 * Redis call this first, since ioredis and BullMQ otherwise retry for ever, printing every failed attempt.
 */
export async function waitForRedis(url: string, options: WaitForRedisOptions = {}): Promise<void> {
  const { timeoutMs = 15_000, retryMs = 500 } = options;
  const deadline = Date.now() + timeoutMs;
  let attempts = 0;
  for (;;) {
    const left = deadline - Date.now();
    try {
      return await ping(url, Math.max(100, Math.min(5000, left)));
    } catch (error) {
      const reason = error instanceof Error ? error.message.split('\n')[0]! : String(error);
      if (/WRONGPASS|NOAUTH|invalid password|invalid username/i.test(reason)) {
        throw new RedisUnreachableError(
          `Redis at ${redisUrlForDisplay(url)} (REDIS_URL) refused the credentials: ${reason}`,
        );
      }
      if (attempts++ === 0) options.onFirstFailure?.(reason);
      if (Date.now() + retryMs >= deadline) {
        const waited = Math.round(timeoutMs / 1000);
        throw new RedisUnreachableError(
          `Redis at ${redisUrlForDisplay(url)} (REDIS_URL) is unreachable; gave up after ${waited} s: ${reason}`,
        );
      }
    }
    await sleep(retryMs);
  }
}

export function jobOptions(jobs: JobsConfig): JobsOptions {
  return {
    attempts: jobs.attempts,
    backoff: { type: 'exponential', delay: jobs.backoffMs },
    // Keep a week of history for inspection; failed jobs stay until someone retries or removes them.
    removeOnComplete: { age: 7 * 24 * 3600, count: 1000 },
    removeOnFail: false,
  };
}

export async function createSourceQueue(
  source: string,
  connection: Redis,
  jobs: JobsConfig,
): Promise<Queue<SyncJobData, SyncJobResult>> {
  const queue = new Queue<SyncJobData, SyncJobResult>(source, {
    connection,
    prefix: jobs.prefix,
    defaultJobOptions: jobOptions(jobs),
  });
  await queue.setGlobalConcurrency(1);
  return queue;
}
