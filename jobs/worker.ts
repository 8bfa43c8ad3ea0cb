/**
 * The worker of one source's queue: a thin wrapper around runSync that turns the engine's errors into
 * BullMQ's controls — a fatal source error fails without retry, a long rate-limit wait pauses the whole
 * queue, a shutdown or a busy source puts the job back without spending an attempt.
 */
import { setMaxListeners } from 'node:events';
import { hostname } from 'node:os';
import { DelayedError, Worker, type Job, type Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../src/config.ts';
import { logicalRunStart, logicalRunTotals } from '../src/db/ledger.ts';
import { acquireSourceLock, SourceBusyError } from '../src/db/source-lock.ts';
import type { Logger } from '../src/logger.ts';
import { observeFinishedRuns } from '../src/metrics/observe-runs.ts';
import type { Db } from '../src/db/client.ts';
import { runSync } from '../src/sync/run-sync.ts';
import { addCounters, emptyCounters, type RunCounters } from '../src/types.ts';
import type { SyncJobData, SyncJobResult } from './queues.ts';
import type { SourceRuntime } from './runtime.ts';
import { clearWaiting, markWaiting, steerError } from './steer-error.ts';
import type { SliceDispatcher } from '../src/sync/run-slice.ts';

export interface SourceWorkerOptions {
  config: Config;
  runtime: SourceRuntime;
  queue: Queue<SyncJobData, SyncJobResult>;
  connection: Redis;
  db: Db;
  logger: Logger;
  /** Aborted on shutdown: the run stops after committing its current page. */
  signal: AbortSignal;
  /** Where the slices of a split scan are read: by any worker. */
  slices?: SliceDispatcher;
}

/** How long a job waits before trying again when another run of its source holds the lock. */
const BUSY_RETRY_MS = 5_000;

export function createSourceWorker(options: SourceWorkerOptions): Worker<SyncJobData, SyncJobResult> {
  const { runtime, queue } = options;
  const worker = new Worker<SyncJobData, SyncJobResult>(queue.name, (job, token) => processJob(options, job, token), {
    connection: options.connection,
    prefix: options.config.jobs.prefix,
    concurrency: 1,
    // Runs are long and each makes many requests; the request-level limiter (src/http/rate-limiter.ts)
    // is what keeps the API's limits. This queue limiter only spaces run starts and lets a 429 pause
    // the whole queue through queue.rateLimit().
    limiter: { max: 1, duration: 1000 },
    maxStalledCount: 10,
  });
  worker.on('error', (error) => options.logger.error({ err: error, source: runtime.name }, 'worker error'));
  return worker;
}

async function processJob(
  options: SourceWorkerOptions,
  job: Job<SyncJobData, SyncJobResult>,
  token?: string,
): Promise<SyncJobResult> {
  const { runtime, config } = options;
  const logger = options.logger.child({ source: runtime.name, jobId: job.id });
  const attemptStarted = new Date();
  let lock;
  try {
    lock = await acquireSourceLock(config.databaseUrl.reveal(), runtime.name);
  } catch (error) {
    if (!(error instanceof SourceBusyError)) throw error;
    logger.info('another run of this source is under way; trying again shortly');
    // No ledger row yet: the job itself says it waits (see JobWaiting in steer-error.ts).
    await markWaiting(job, 'source_busy', new Date(Date.now() + BUSY_RETRY_MS));
    await job.moveToDelayed(Date.now() + BUSY_RETRY_MS, token);
    throw new DelayedError();
  }
  // A run stops on shutdown, and as soon as its lock is lost: another worker may already hold the source.
  const signal = AbortSignal.any([options.signal, lock.lost]);
  // Every request and every wait for the rate limiter listens to it while it lasts, and a slice plan makes
  // up to 8 requests at once. Node warns of a leak past 10 by default.
  setMaxListeners(32, signal);
  try {
    await clearWaiting(job);
    const counters: RunCounters = emptyCounters();
    let last: SyncJobResult | undefined;
    const started = Date.now();
    let firstStart = started;
    for (const stream of runtime.streams) {
      const result = await runSync({
        source: runtime.name,
        stream,
        mode: job.data.mode,
        client: runtime.client,
        db: options.db,
        // runSync binds source and jobId itself: the job's logger would write them twice.
        logger: options.logger,
        settings: runtime.settings,
        signal,
        jobId: job.id,
        worker: `${hostname()}:${process.pid}`,
        slices: options.slices,
      });
      // What the job was asked for: every row of its logical run, not only this attempt's.
      addCounters(counters, await logicalRunTotals(options.db, result.logicalRunId));
      firstStart = Math.min(firstStart, await logicalRunStart(options.db, result.logicalRunId, started));
      last = {
        runId: String(result.runId),
        source: runtime.name,
        mode: result.mode,
        counters,
        watermarkAfter: result.watermarkAfter?.toISOString() ?? null,
        durationMs: 0,
      };
    }
    return { ...last!, counters, durationMs: Date.now() - firstStart };
  } catch (error) {
    return await steerError(error, { job, token, queue: options.queue, signal, logger });
  } finally {
    // Before the lock goes: the runs this attempt abandoned are told apart from others' by it (observe-runs.ts).
    await observeFinishedRuns(options.db, { source: runtime.name, jobId: job.id, since: attemptStarted }).catch(
      (error: unknown) => logger.warn({ err: error }, 'could not count the finished runs in the metrics'),
    );
    await lock.release();
  }
}
