/**
 * One BullMQ queue per source, named after the source, under the configured key prefix. At most one job
 * of a queue is active at a time across every worker process (global concurrency 1); the source lock in
 * Postgres backs this up should a stalled job ever be picked up twice.
 */
import { Queue, type JobsOptions } from 'bullmq';
import { Redis } from 'ioredis';
import type { JobsConfig } from '../src/config.ts';
import type { RunCounters, SyncMode } from '../src/types.ts';

export interface SyncJobData {
  mode: SyncMode;
  requestedBy: 'scheduler' | 'cli' | 'demo';
}

/** What a completed job returns (kept in Redis as JSON, read by `npm run sync`). */
export interface SyncJobResult {
  runId: string;
  source: string;
  mode: SyncMode;
  counters: RunCounters;
  watermarkAfter: string | null;
  durationMs: number;
}

/** A Redis connection as BullMQ wants it for blocking commands. */
export function createRedis(url: string, onError?: (error: Error) => void): Redis {
  const redis = new Redis(url, { maxRetriesPerRequest: null, lazyConnect: false });
  // ioredis reconnects by itself; without a listener it prints every failed attempt as an unhandled error.
  redis.on('error', onError ?? (() => undefined));
  return redis;
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

export async function createSourceQueue(source: string, connection: Redis, jobs: JobsConfig): Promise<Queue<SyncJobData, SyncJobResult>> {
  const queue = new Queue<SyncJobData, SyncJobResult>(source, { connection, prefix: jobs.prefix, defaultJobOptions: jobOptions(jobs) });
  await queue.setGlobalConcurrency(1);
  return queue;
}
