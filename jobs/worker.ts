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
import { jobLedgerRows, logicalRunStart, logicalRunTotals } from '../src/db/ledger.ts';
import { closeCancelledRows, jobCancelRequest, readPause } from '../src/db/source-control.ts';
import { CancelledError, FatalSourceError } from '../src/errors.ts';
import { acquireSourceLock, SourceBusyError } from '../src/db/source-lock.ts';
import type { Logger } from '../src/logger.ts';
import { observeFinishedRuns } from '../src/metrics/observe-runs.ts';
import type { Db } from '../src/db/client.ts';
import { runSync } from '../src/sync/run-sync.ts';
import { addCounters, emptyCounters, type RunCounters } from '../src/types.ts';
import type { SyncJobData, SyncJobResult } from './queues.ts';
import type { SourceRuntime } from './runtime.ts';
import { clearWaiting, markWaiting, steerError } from './steer-error.ts';
import { pendingCopyOf, skippedResult } from './coalesce.ts';
import { shareOfMode } from '../src/sync/budget-plan.ts';
import { cancelledError, watchCancel } from './cancel-watch.ts';
import type { SliceDispatcher } from '../src/sync/run-slice.ts';
import { rangeOfData } from '../src/sync/backfill-range.ts';

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

/** The range of a backfill job; a job whose range is missing or unreadable cannot be run, retried or not. */
function backfillRangeOf(data: unknown) {
  try {
    return rangeOfData(data);
  } catch (error) {
    throw new FatalSourceError(error instanceof Error ? error.message : String(error), undefined, { cause: error });
  }
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
  const copy = await pendingCopyOf(options.queue, job);
  if (copy) {
    logger.info({ mode: job.data.mode, pendingJobId: copy.id }, 'skipped: the same scan is still pending');
    return skippedResult(runtime.name, job, copy);
  }
  const attemptStarted = new Date();
  // Rows of this job started no earlier than it was added (an indexed range of the ledger).
  const since = new Date(job.timestamp - 60_000);
  const skipped = await skipIfPaused(options, job, since, logger);
  if (skipped) return skipped;
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
  // A run stops on shutdown, as soon as its lock is lost (another worker may already hold the source), and when an
  // operator cancels it (the request comes through Postgres, from any process: jobs/cancel-watch.ts).
  const findCancel = () => jobCancelRequest(options.db, { source: runtime.name, jobId: job.id!, since });
  const cancel = watchCancel(findCancel, { logger });
  const signal = AbortSignal.any([options.signal, lock.lost, cancel.signal]);
  // Every request and every wait for the rate limiter listens to it while it lasts, and a slice plan makes
  // up to 8 requests at once. Node warns of a leak past 10 by default.
  setMaxListeners(32, signal);
  try {
    await clearWaiting(job);
    // Cancelled while it waited in the queue (put back after a wait, or taken again after its worker stopped).
    const request = await findCancel();
    if (request) return await cancelledResult(options, job, since, cancelledError(request));
    const counters: RunCounters = emptyCounters();
    let last: SyncJobResult | undefined;
    const started = Date.now();
    let firstStart = started;
    // A backfill's range comes back from Redis: checked, and a job without one fails for good (steerError).
    const range = job.data.mode === 'backfill' ? backfillRangeOf(job.data.range) : undefined;
    for (const stream of runtime.streams) {
      if (signal.aborted) throw signal.reason;
      const result = await runSync({
        source: runtime.name,
        stream,
        mode: job.data.mode,
        range,
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
    // Cancelled: the job is over (completed, never retried); the next run resumes the scan from its saved progress.
    if (signal.reason instanceof CancelledError) return await cancelledResult(options, job, since, signal.reason);
    const bulk = shareOfMode(job.data.mode) === 'bulk';
    return await steerError(error, { job, token, queue: options.queue, signal, logger, bulk });
  } finally {
    cancel.stop();
    // Before the lock goes: the runs this attempt abandoned are told apart from others' by it (observe-runs.ts).
    await observeFinishedRuns(options.db, { source: runtime.name, jobId: job.id, since: attemptStarted }).catch(
      (error: unknown) => logger.warn({ err: error }, 'could not count the finished runs in the metrics'),
    );
    await lock.release();
  }
}

/**
 * A scheduled run of a paused source is skipped, not queued up: the job completes at once, says so in its result,
 * and the log says so (no ledger row: nothing ran). A scheduled job already under way when the source was paused —
 * it has rows: put back after a wait or a shutdown — goes on to its end, as do runs an operator asked for.
 */
async function skipIfPaused(
  options: SourceWorkerOptions,
  job: Job<SyncJobData, SyncJobResult>,
  since: Date,
  logger: Logger,
): Promise<SyncJobResult | null> {
  if (job.data.requestedBy !== 'scheduler') return null;
  const pause = await readPause(options.db, options.runtime.name);
  if (pause === null) return null;
  if ((await jobLedgerRows(options.db, options.runtime.name, job.id!, since)).length > 0) return null;
  const reason = `the source is paused since ${pause.since.toISOString()}${pause.by ? ` by ${pause.by}` : ''}`;
  logger.info({ mode: job.data.mode, pausedAt: pause.since, pausedBy: pause.by }, `scheduled run skipped: ${reason}`);
  return { ...emptyResult(options.runtime.name, job), stop: { kind: 'skipped', reason } };
}

function emptyResult(source: string, job: Job<SyncJobData, SyncJobResult>): SyncJobResult {
  return { runId: '', source, mode: job.data.mode, counters: emptyCounters(), watermarkAfter: null, durationMs: 0 };
}

/** What a cancelled job returns: the totals of its logical run so far (none when it was cancelled before it began). */
async function cancelledResult(
  options: SourceWorkerOptions,
  job: Job<SyncJobData, SyncJobResult>,
  since: Date,
  reason: CancelledError,
): Promise<SyncJobResult> {
  const source = options.runtime.name;
  // Rows its worker left running (it stopped without ending them): this worker holds the source now.
  await closeCancelledRows(options.db, { source, jobId: job.id!, since, now: new Date(), error: reason.message });
  const last = (await jobLedgerRows(options.db, source, job.id!, since)).at(-1);
  const result = emptyResult(source, job);
  if (last) {
    const logicalRunId = last.logicalRunId ?? last.id;
    result.runId = String(logicalRunId);
    result.counters = await logicalRunTotals(options.db, logicalRunId);
    result.durationMs = Date.now() - (await logicalRunStart(options.db, logicalRunId, Date.now()));
  }
  options.logger.info({ source: options.runtime.name, jobId: job.id, runId: result.runId }, reason.message);
  return { ...result, stop: { kind: 'cancelled', reason: reason.message } };
}
