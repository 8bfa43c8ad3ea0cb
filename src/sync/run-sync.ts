/**
 * runSync: one run of one stream of one source. Everything arrives as an argument (client, database,
 * logger, clock, abort signal), so tests hand it a fake server and a frozen clock.
 *
 * Per page, in one transaction: the rows (one set-based statement), the rejected records, the scan's
 * progress and the ledger's counters (page-loop.ts). A scan may instead be read in slices (read-slices.ts);
 * a full scan ends with the confirmation of deletions (confirm-deletions.ts). The watermark moves only when
 * the scan completes, and never past what was seen. The caller must hold the source's lock (see
 * src/db/source-lock.ts).
 */
import { AbortedError, CancelledError, FatalSourceError, RateLimitedError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { Db } from '../db/client.ts';
import {
  abandonRunning,
  closeWaiting,
  finishRun,
  logicalRunTotals,
  recordEstimate,
  recordPage,
  runCounters,
  startRun,
  supersededError,
} from '../db/ledger.ts';
import { analyzeAfterLargeWrite } from '../db/analyze-vouchers.ts';
import { remapIfMappingChanged } from '../db/remap-rows.ts';
import { clearScanProgress, completeScan, loadState, saveScanProgress, type ScanState } from '../db/stream-state.ts';
import { clearScan, countScanSeen } from '../db/vanished.ts';
import {
  emptyCounters,
  systemClock,
  type BackfillRange,
  type Clock,
  type RequestObserver,
  type RunCounters,
  type SourceSettings,
  type StreamDefinition,
  type ScanContext,
  type SyncMode,
} from '../types.ts';
import { confirmDeletions } from './confirm-deletions.ts';
import { highestCursor, nextWatermark, raiseHighMark } from './cursor.ts';
import { commitPages, stopped } from './page-loop.ts';
import { readSlices, type SlicingRun } from './read-slices.ts';
import type { SliceDispatcher } from './run-slice.ts';
import { createProgressLog } from './progress-log.ts';
import { sustainedRate } from '../status/eta.ts';
import { totalWarning } from './total-check.ts';
import { describeWait, waitingReasonOf } from './waiting.ts';
import { shareOfMode } from './budget-plan.ts';
import { rangeData, sameBackfill } from './backfill-range.ts';
import { openPageSizing } from './page-size.ts';

export interface RunSyncOptions<Client> {
  source: string;
  stream: StreamDefinition<Client>;
  mode: SyncMode;
  client: Client;
  db: Db;
  logger: Logger;
  /** With `limits`, progress lines and ETAs account for the source's rate limit. */
  settings: Pick<SourceSettings, 'lookbackMs' | 'confirmMax'> & Partial<Pick<SourceSettings, 'limits'>>;
  /** Every time the run decides with or stores (see "clock" in src/types.ts). @default systemClock */
  clock?: Clock;
  signal?: AbortSignal;
  jobId?: string;
  worker?: string;
  /** Where the slices of a split scan are read (default: in this process, one after another). */
  slices?: SliceDispatcher;
  /** The range of a `backfill` run (required in that mode): see src/sync/backfill-range.ts. */
  range?: BackfillRange;
}

export interface RunResult {
  runId: bigint;
  /** The logical run this row belongs to (its first row): see src/db/ledger.ts. */
  logicalRunId: bigint;
  source: string;
  stream: string;
  mode: SyncMode;
  counters: RunCounters;
  watermarkBefore: Date | null;
  watermarkAfter: Date | null;
  durationMs: number;
}

export async function runSync<Client>(options: RunSyncOptions<Client>): Promise<RunResult> {
  const { source, stream, mode, db, clock = systemClock } = options;
  const started = clock.now();
  await remapIfMappingChanged(db, { source, stream, logger: options.logger, now: started });
  const abandoned = await abandonRunning(db, source, stream.name, started);
  await closeWaiting(db, source, stream.name);
  const state = await loadState(db, source, stream.name);
  const range = mode === 'backfill' ? backfillRange(options) : undefined;
  // A backfill resumes only the scan of its own range; one of another range is replaced.
  const resumed = range ? sameBackfill(state.progress.backfill, range) : state.progress[mode];
  const { runId, logicalRunId } = await startRun(db, {
    source,
    stream: stream.name,
    mode,
    watermarkBefore: state.watermark,
    jobId: options.jobId,
    worker: options.worker,
    startedAt: started,
    resumesRunId: ownerOf(resumed),
  });
  // The caller's logger carries none of these: a key bound twice is written twice on every line.
  const logger = options.logger.child({ source, stream: stream.name, runId: String(runId), jobId: options.jobId });
  if (abandoned > 0) logger.warn({ abandoned }, 'marked runs left unfinished by a stopped worker as abandoned');

  const counters = emptyCounters();
  const observer: RequestObserver = {
    onRequest: () => counters.apiCalls++,
    onRateLimited: () => counters.rateLimited++,
  };
  const scan: ScanState = resumed ?? {
    scan: null,
    highMark: null,
    scanId: String(runId),
    startedAt: started.toISOString(),
    ...(range ? { range: rangeData(range) } : {}),
  };
  const run: SlicingRun = { runId, scan, state, logger, sliced: false };
  const call = { signal: options.signal, observer, share: shareOfMode(mode) };
  try {
    const pageSizing = await openPageSizing(db, { source, stream, logger, clock });
    // The scan names the row that owns it from the start, so that the job's next row continues this logical run
    // even when this one waits before its first page (see startRun).
    scan.runId = String(runId);
    await db.$transaction((tx) => saveScanProgress(tx, source, stream.name, mode, scan, started));
    const continued = logicalRunId !== runId;
    logger.info(
      {
        mode,
        watermark: state.watermark,
        resumed: resumed !== undefined,
        ...(continued ? { logicalRunId: String(logicalRunId) } : {}),
        ...(pageSizing ? { pageSize: pageSizing.next(), pageSizeFound: pageSizing.settled } : {}),
      },
      'run started',
    );
    const progress = createProgressLog({
      logger,
      clock,
      startedAt: started,
      before: continued ? (await logicalRunTotals(db, logicalRunId)).fetched : 0,
      requestsPerSecond: options.settings.limits ? sustainedRate(options.settings.limits.windows) : null,
    });
    run.progress = progress;
    run.estimate = async (total: number) => {
      if (typeof scan.estimatedTotal !== 'number') scan.estimatedTotal = total;
      progress.estimate(scan.estimatedTotal);
      await recordEstimate(db, runId, scan.estimatedTotal);
    };
    if (typeof scan.estimatedTotal === 'number') await run.estimate(scan.estimatedTotal);
    // A whole list's size is a total for a scan that reads the whole list: a full scan or a first backfill.
    const wholeList = mode === 'full' || state.watermark === null;
    const context: ScanContext<Client> = {
      client: options.client,
      mode,
      watermark: state.watermark,
      lookbackMs: options.settings.lookbackMs,
      now: started,
      progress: resumed ? resumed.scan : null,
      ...(range ? { range } : {}),
      call,
      logger,
      pageSizing,
    };
    await readSlices({ ...options, clock, lookbackMs: options.settings.lookbackMs }, context, run);
    if (!run.sliced) {
      await commitPages({
        stream,
        pages: stream.scan(context),
        db,
        clock,
        signal: options.signal,
        commit: { source, runId, scanId: mode === 'full' ? BigInt(scan.scanId) : undefined, logger },
        countersFor: () => counters,
        checkpoint: async (tx, { page, rows, now }) => {
          scan.scan = page.progress;
          if (page.total !== undefined && page.total !== null) {
            scan.reported = page.total;
            if (wholeList && typeof scan.estimatedTotal !== 'number') {
              scan.estimatedTotal = page.total;
              progress.estimate(page.total);
              await recordEstimate(tx, runId, page.total);
            }
          }
          scan.highMark = raiseHighMark(scan.highMark, highestCursor(rows, stream.cursorField));
          await saveScanProgress(tx, source, stream.name, mode, scan, now);
          await recordPage(tx, runId, now, counters);
        },
        committed: async () => progress.page(counters),
      });
    }
    if (options.signal?.aborted) throw stopped(options.signal);
    if (mode === 'full') {
      const confirmMax = options.settings.confirmMax;
      counters.deleted += await confirmDeletions({
        source,
        stream,
        client: options.client,
        db,
        runId,
        scan,
        confirmMax,
        call,
        counters,
        logger,
      });
    }
    const warnings =
      mode === 'full'
        ? await scanWarnings(options, scan, counters, run.sliced ? await runCounters(db, runId) : null)
        : [];
    for (const warning of warnings) logger.warn({ warning }, 'the run succeeded with a warning');
    // A scan read in slices has read everything only as it stood when the scan started: a voucher changed
    // later, in a range a slice had already passed, is read by no slice, while another slice may still read
    // newer ones. Its watermark stops at the scan's start, without the clock-skew tolerance. So does a scan this
    // run resumed: while it waited (a rate limit, a crash, a deploy) the list moved under its saved position —
    // deletions above it pull newer records down into the pages it has still to read, while the changes made
    // meanwhile above that position are never read — so the newest cursor it sees says nothing of what it missed.
    const resumedScan = scan.scanId !== String(runId);
    // A backfill moves no watermark: the next incremental run goes on from where the last one left it.
    const watermarkAfter = range
      ? state.watermark
      : nextWatermark(
          state.watermark,
          scan.highMark,
          new Date(scan.startedAt),
          run.sliced || resumedScan ? 0 : undefined,
        );
    await db.$transaction(async (tx) => {
      const now = clock.now();
      const fullScanStartedAt = mode === 'full' ? new Date(scan.startedAt) : undefined;
      // The data is complete up to the scan's start when the scan read every change made before it: a scan of the
      // whole list, or one whose cursor is the modification time. Cin7's incremental scans (by creation time) read
      // new vouchers only; its redemptions wait for the next reconciliation.
      const completeAsOf =
        wholeList || stream.cursorField === 'sourceModifiedAt' ? new Date(scan.startedAt) : undefined;
      // Nor does it count as a success of the stream (`last_success_at`): only its saved scan goes.
      if (range) await clearScanProgress(tx, source, stream.name, mode, now);
      else
        await completeScan(tx, {
          source,
          stream: stream.name,
          mode,
          runId,
          watermark: watermarkAfter,
          fullScanStartedAt,
          completeAsOf,
          now,
        });
      const ended = { watermarkAfter: range ? undefined : watermarkAfter, warnings, add: run.sliced };
      if (!(await finishRun(tx, runId, 'succeeded', counters, now, ended))) throw supersededError(runId);
    });
    if (run.sliced) Object.assign(counters, await runCounters(db, runId));
    if (mode === 'full') await clearScan(db, BigInt(scan.scanId));
    // A logical run split over several jobs (waits, restarts) wrote what all its rows did.
    const written = continued ? await logicalRunTotals(db, logicalRunId) : counters;
    await analyzeAfterLargeWrite(db, written.inserted + written.updated + written.deleted, logger);
    const durationMs = clock.now().getTime() - started.getTime();
    logger.info({ ...counters, watermarkAfter, durationMs }, 'run succeeded');
    return {
      runId,
      logicalRunId,
      source,
      stream: stream.name,
      mode,
      counters,
      watermarkBefore: state.watermark,
      watermarkAfter,
      durationMs,
    };
  } catch (error) {
    const now = clock.now();
    // A wait is planned throttling, not trouble: the row says why and until when, and the log stays at info.
    const waiting =
      error instanceof RateLimitedError && options.signal?.aborted !== true
        ? { reason: waitingReasonOf(error), until: new Date(now.getTime() + error.retryAfterMs) }
        : null;
    const interrupted = error instanceof AbortedError || options.signal?.aborted === true;
    const reason = options.signal?.reason instanceof AbortedError ? options.signal.reason : error;
    const message = reason instanceof Error ? reason.message : String(reason);
    // Cancelled by an operator: stopped at a page boundary like an interruption, and the next run resumes the scan.
    const cancelled = reason instanceof CancelledError;
    const status = waiting ? 'waiting' : cancelled ? 'cancelled' : interrupted ? 'interrupted' : 'failed';
    await finishRun(db, runId, status, counters, now, {
      error: waiting ? `${describeWait(waiting.reason, waiting.until)}: ${message}` : message,
      add: run.sliced,
      waiting: waiting ?? undefined,
    }).catch((cause: unknown) => logger.error({ err: cause }, 'could not record the end of the run'));
    if (waiting)
      logger.info(
        { waitingReason: waiting.reason, waitingUntil: waiting.until, reason: message, ...counters },
        `run ${describeWait(waiting.reason, waiting.until)}; the scan resumes then`,
      );
    else if (cancelled) logger.info({ reason: message, ...counters }, 'run cancelled; the next run resumes the scan');
    else
      logger[interrupted ? 'warn' : 'error'](
        { err: error, ...counters },
        interrupted ? 'run interrupted; the scan resumes later' : 'run failed',
      );
    throw error;
  }
}

/** A backfill's range, and a stream that can read one (in slices: src/sync/read-slices.ts). */
function backfillRange<Client>(options: RunSyncOptions<Client>): BackfillRange {
  if (!options.range) throw new FatalSourceError(`a backfill of ${options.source} needs a range`);
  if (!options.stream.planSlices || !options.stream.scanSlice)
    throw new FatalSourceError(
      `${options.source}/${options.stream.name} cannot backfill a range (it cannot be sliced)`,
    );
  return options.range;
}

/** The row that owned a saved scan (older saved states may not name one). */
function ownerOf(scan: ScanState | undefined): bigint | null {
  const id = scan?.runId;
  return typeof id === 'string' && /^\d{1,19}$/.test(id) ? BigInt(id) : null;
}

/**
 * What a completed full scan has to report: a total the server reported that the distinct records the
 * scan stored (its scan_seen rows) and rejected do not explain (see total-check.ts). A sliced scan's
 * rejections were counted in the ledger row by its slices (`counted`).
 */
async function scanWarnings<Client>(
  options: RunSyncOptions<Client>,
  scan: ScanState,
  counters: RunCounters,
  counted: RunCounters | null,
): Promise<string[]> {
  const reported = typeof scan.reported === 'number' ? scan.reported : null;
  if (reported === null) return [];
  const read = await countScanSeen(options.db, BigInt(scan.scanId));
  const warning = totalWarning({
    source: options.source,
    read,
    rejected: counters.rejected + (counted?.rejected ?? 0),
    reported,
  });
  return warning === null ? [] : [warning];
}
