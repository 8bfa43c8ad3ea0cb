/**
 * The slices of a split scan travel on their own queue per source (`<source>-slices`), served by every
 * worker process, so any worker can take any slice. Each slice job saves its progress in its own data
 * after every committed page: a slice whose worker died is resumed by another from there.
 */
import { setMaxListeners } from 'node:events';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../src/config.ts';
import { AbortedError } from '../src/errors.ts';
import type { Logger } from '../src/logger.ts';
import type { Db } from '../src/db/client.ts';
import {
  runSlice,
  type SliceDispatcher,
  type SliceProgress,
  type SliceResult,
  type SliceTask,
} from '../src/sync/run-slice.ts';
import { jobOptions } from './queues.ts';
import type { SourceRuntime } from './runtime.ts';
import { WaitingError, describeWait } from '../src/sync/waiting.ts';
import { clearWaiting, steerError, waitingOf } from './steer-error.ts';
import { scanCancelRequest } from '../src/db/source-control.ts';
import { cancelledError, watchCancel } from './cancel-watch.ts';

export interface SliceJobData extends SliceTask {
  resume?: SliceProgress | null;
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
      const logger = options.logger.child({
        source: runtime.name,
        stream: stream.name,
        runId: job.data.runId,
        jobId: job.id,
        slice: job.data.index,
      });
      // A slice of a cancelled run stops too, after its page: failed for good, so that the run that resumes the scan
      // takes it again from where it stopped (createSliceDispatcher retries failed slices).
      const findCancel = () => scanCancelRequest(options.db, job.data);
      const cancel = watchCancel(findCancel, { logger });
      const signal = AbortSignal.any([options.signal, cancel.signal]);
      // A slice's requests, its page fetched ahead and its waits for the limiter each listen to it while they last.
      setMaxListeners(32, signal);
      try {
        await clearWaiting(job);
        const request = await findCancel();
        if (request) throw new UnrecoverableError(cancelledError(request).message);
        return await runSlice({
          task: job.data,
          stream,
          client: runtime.client,
          db: options.db,
          logger,
          lookbackMs: runtime.settings.lookbackMs,
          resume: job.data.resume,
          onPage: (resume) => job.updateData({ ...job.data, resume }),
          signal,
        });
      } catch (error) {
        if (error instanceof UnrecoverableError) throw error;
        return await steerError(error, { job, token, queue: options.queue, signal, logger });
      } finally {
        cancel.stop();
      }
    },
    {
      connection: options.connection,
      prefix: config.jobs.prefix,
      concurrency: config.jobs.sliceConcurrency,
      limiter: { max: 100, duration: 1000 },
      maxStalledCount: 10,
      name: `${hostname()}:${process.pid}`,
    },
  );
  worker.on('error', (error) => options.logger.error({ err: error, source: runtime.name }, 'slice worker error'));
  return worker;
}

/**
 * Puts slices on the queue (idempotently: job ids are the plan's unique key and the slice's index) and waits for them by
 * polling their state rather than by listening to queue events: a slice that vanished from Redis (restarted
 * without persistence, flushed) is put back instead of being waited for forever. When the slices are held back
 * longer than `maxWaitMs` (their queue paused by a long rate-limit wait or the daily budget), the run stops waiting
 * with a WaitingError, so that it is recorded `waiting` and gives its worker and its source's lock back; its job
 * resumes the scan when the wait is over, and the slices that finished meanwhile are not read again.
 */
export function createSliceDispatcher(
  queue: Queue<SliceJobData, SliceResult>,
  options: {
    pollMs?: number;
    /** Longest the run waits for slices held back by their queue's rate limit, in ms. @default 30_000 */
    maxWaitMs?: number;
  } = {},
): SliceDispatcher {
  const pollMs = options.pollMs ?? 200;
  const maxWaitMs = options.maxWaitMs ?? 30_000;
  const jobIdOf = (task: SliceTask) => `${task.key}-${task.index}`;
  const put = (tasks: SliceTask[]) =>
    queue.addBulk(tasks.map((task) => ({ name: 'slice', data: task, opts: { jobId: jobIdOf(task) } })));
  return {
    async run(tasks, onDone, signal) {
      await put(tasks);
      // A slice that failed for good in an earlier attempt of this run gets another chance now.
      for (const task of tasks) {
        const job = await queue.getJob(jobIdOf(task));
        if (job && (await job.isFailed())) await job.retry();
      }
      let pending = tasks;
      while (pending.length > 0) {
        if (signal?.aborted) throw new AbortedError('stopped while waiting for slices');
        const still: SliceTask[] = [];
        const lost: SliceTask[] = [];
        let held: ReturnType<typeof waitingOf> = null;
        for (const task of pending) {
          const job = await queue.getJob(jobIdOf(task));
          held = (job && waitingOf(job)) ?? held;
          if (!job) lost.push(task);
          else if (job.finishedOn && job.failedReason && (await job.isFailed()))
            throw new Error(`slice ${task.index} failed: ${job.failedReason}`);
          else if (await job.isCompleted()) {
            // The state is read after the job: a slice that finished in between has no result in `job` yet.
            const result = job.returnvalue ?? (await queue.getJob(jobIdOf(task)))?.returnvalue;
            if (result) await onDone(task, result);
            else still.push(task);
          } else still.push(task);
        }
        if (lost.length > 0) await put(lost);
        pending = [...still, ...lost];
        const heldMs = pending.length > 0 ? await queue.getRateLimitTtl() : 0;
        // Waiting for the daily budget here would hold the source's queue from its incremental runs.
        if (heldMs > maxWaitMs || (heldMs > 0 && held?.reason === 'daily_budget')) {
          const reason = held?.reason ?? 'rate_limit';
          const until = new Date(Date.now() + heldMs);
          throw new WaitingError(`the slices of the scan are ${describeWait(reason, until)}`, heldMs, reason);
        }
        if (pending.length > 0) await sleep(pollMs, undefined, { signal }).catch(() => undefined);
      }
    },
  };
}
