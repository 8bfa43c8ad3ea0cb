/**
 * Asking for runs through the real queues, as `npm run sync` does, from outside the worker processes.
 * Waiting polls the job's state rather than listening to queue events: events are lost when Redis restarts.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import type { SyncJobData, SyncJobResult } from '../../jobs/queues.ts';
import type { SyncMode } from '../../src/types.ts';

export type SourceName = 'carecloud' | 'cin7';

export interface QueueClient {
  /** Adds one job; returns its id. */
  enqueue(source: SourceName, mode: SyncMode, label?: string): Promise<string>;
  /** Waits for the job to complete; throws with BullMQ's reason when it fails for good or vanishes. */
  waitFor(source: SourceName, jobId: string, timeoutMs: number): Promise<SyncJobResult>;
  /** Enqueues and waits. */
  run(source: SourceName, mode: SyncMode, timeoutMs: number): Promise<SyncJobResult>;
  /** Removes the Job Schedulers (no new scheduled run is created afterwards). */
  removeSchedulers(): Promise<void>;
  /** Jobs of the source that are active, waiting, delayed or prioritized. */
  pending(source: SourceName): Promise<number>;
  /** Jobs of the source being processed right now. */
  active(source: SourceName): Promise<number>;
  close(): Promise<void>;
}

export function createQueueClient(redisUrl: string, prefix: string): QueueClient {
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  connection.on('error', () => undefined);
  const queues = new Map<SourceName, Queue<SyncJobData, SyncJobResult>>();
  const queueOf = (source: SourceName) => {
    let queue = queues.get(source);
    if (!queue) {
      queue = new Queue<SyncJobData, SyncJobResult>(source, { connection, prefix });
      queue.on('error', () => undefined);
      queues.set(source, queue);
    }
    return queue;
  };
  const client: QueueClient = {
    async enqueue(source, mode, label = 'chaos') {
      const jobId = `${label}-${mode}-${randomUUID()}`;
      // The options the service itself gives its jobs (attempts, backoff) come from the queue's defaults
      // only inside the service; here they are spelled out so that a failed attempt is retried likewise.
      await queueOf(source).add(
        mode,
        { mode, requestedBy: 'cli' },
        { jobId, attempts: 20, backoff: { type: 'exponential', delay: 300 }, removeOnFail: false },
      );
      return jobId;
    },
    async waitFor(source, jobId, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const job = await queueOf(source).getJob(jobId);
        if (!job) throw new Error(`job ${jobId} of ${source} vanished from the queue`);
        const state = await job.getState();
        // Read again: the job fetched above may predate its completion (and then has no return value).
        if (state === 'completed') return (await queueOf(source).getJob(jobId))!.returnvalue;
        if (state === 'failed')
          throw new Error(`job ${jobId} of ${source} failed after ${job.attemptsMade} attempts: ${job.failedReason}`);
        if (Date.now() > deadline) throw new Error(`job ${jobId} of ${source} still ${state} after ${timeoutMs} ms`);
        await sleep(200);
      }
    },
    async run(source, mode, timeoutMs) {
      return client.waitFor(source, await client.enqueue(source, mode, 'final'), timeoutMs);
    },
    async removeSchedulers() {
      for (const source of ['carecloud', 'cin7'] as const) {
        const queue = queueOf(source);
        for (const scheduler of await queue.getJobSchedulers()) await queue.removeJobScheduler(scheduler.key);
      }
    },
    async pending(source) {
      const counts = await queueOf(source).getJobCounts(
        'active',
        'waiting',
        'delayed',
        'prioritized',
        'waiting-children',
      );
      return Object.values(counts).reduce((a, b) => a + b, 0);
    },
    async active(source) {
      return queueOf(source).getActiveCount();
    },
    async close() {
      await Promise.all([...queues.values()].map((q) => q.close().catch(() => undefined)));
      connection.disconnect();
    },
  };
  return client;
}
