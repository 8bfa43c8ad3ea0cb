/**
 * The slices of a split scan travel on their own queue per source (`<source>-slices`), served by every
 * worker process, so any worker can take any slice. Each slice job saves its progress in its own data
 * after every committed page: a slice whose worker died is resumed by another from there.
 */
import { hostname } from 'node:os';
import { Queue, QueueEvents, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../src/config.ts';
import { AbortedError } from '../src/errors.ts';
import type { Logger } from '../src/logger.ts';
import type { Db } from '../src/sync/ledger.ts';
import { runSlice, type SliceDispatcher, type SliceResult, type SliceTask } from '../src/sync/run-slice.ts';
import type { RunCounters, Json } from '../src/types.ts';
import { createRedis, jobOptions } from './queues.ts';
import type { SourceRuntime } from './runtime.ts';
import { steerError } from './steer-error.ts';

export interface SliceJobData extends SliceTask {
  resume?: { progress: Json; counters: RunCounters; highMark: string | null } | null;
}

export const sliceQueueName = (source: string) => `${source}-slices`;

export function createSliceQueue(source: string, connection: Redis, config: Config): Queue<SliceJobData, SliceResult> {
  return new Queue<SliceJobData, SliceResult>(sliceQueueName(source), {
    connection,
    prefix: config.jobs.prefix,
    // Finished slices stay a day: a run resumed after a crash reads their results instead of re-reading them.
    defaultJobOptions: { ...jobOptions(config.jobs), removeOnComplete: { age: 24 * 3600 } },
  });
}

export function createSliceWorker(options: {
  config: Config;
  runtime: SourceRuntime;
  queue: Queue<SliceJobData, SliceResult>;
  connection: Redis;
  db: Db;
  logger: Logger;
  signal: AbortSignal;
}): Worker<SliceJobData, SliceResult> {
  const { runtime, config } = options;
  const worker = new Worker<SliceJobData, SliceResult>(
    options.queue.name,
    async (job: Job<SliceJobData, SliceResult>, token?: string) => {
      const stream = runtime.streams.find((s) => s.name === job.data.stream);
      if (!stream) throw new Error(`no stream ${job.data.stream} in ${runtime.name}`);
      const logger = options.logger.child({ source: runtime.name, stream: stream.name, runId: job.data.runId, jobId: job.id, slice: job.data.index });
      try {
        return await runSlice({
          task: job.data,
          stream,
          client: runtime.client,
          db: options.db,
          logger,
          lookbackMs: runtime.settings.lookbackMs,
          resume: job.data.resume,
          onPage: (resume) => job.updateData({ ...job.data, resume }),
          signal: options.signal,
        });
      } catch (error) {
        return await steerError(error, { job, token, queue: options.queue, signal: options.signal, logger });
      }
    },
    { connection: options.connection, prefix: config.jobs.prefix, concurrency: 1, limiter: { max: 100, duration: 1000 }, maxStalledCount: 10, name: `${hostname()}:${process.pid}` },
  );
  worker.on('error', (error) => options.logger.error({ err: error, source: runtime.name }, 'slice worker error'));
  return worker;
}

/** Puts slices on the queue (idempotently: job ids are the scan's and the slice's) and waits for them. */
export function createSliceDispatcher(queue: Queue<SliceJobData, SliceResult>, redisUrl: string): SliceDispatcher {
  return {
    async run(tasks, onDone, signal) {
      const connection = createRedis(redisUrl);
      const events = new QueueEvents(queue.name, { connection, prefix: queue.opts.prefix });
      try {
        await events.waitUntilReady();
        const jobs = await queue.addBulk(tasks.map((task) => ({ name: 'slice', data: task, opts: { jobId: `${task.scanId}-${task.index}` } })));
        // A slice that failed for good in an earlier attempt of this run gets another chance now.
        for (const job of jobs) {
          const stored = await queue.getJob(job.id!);
          if (stored && (await stored.getState()) === 'failed') await stored.retry();
        }
        const aborted = new Promise<never>((_, reject) => {
          if (signal?.aborted) reject(new AbortedError('stopped while waiting for slices'));
          signal?.addEventListener('abort', () => reject(new AbortedError('stopped while waiting for slices')), { once: true });
        });
        aborted.catch(() => undefined);
        await Promise.race([
          Promise.all(jobs.map(async (job, i) => onDone(tasks[i]!, (await job.waitUntilFinished(events)) as SliceResult))),
          aborted,
        ]);
      } finally {
        await events.close();
        connection.disconnect();
      }
    },
  };
}
