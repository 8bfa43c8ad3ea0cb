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
import { AbortedError, RateLimitedError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { Db } from '../db/client.ts';
import { abandonRunning, finishRun, recordPage, runCounters, startRun, supersededError } from '../db/ledger.ts';
import { remapIfMappingChanged } from '../db/remap-rows.ts';
import { completeScan, loadState, saveProgress, type ScanState } from '../db/stream-state.ts';
import { clearScan, countScanSeen } from '../db/vanished.ts';
import {
  emptyCounters,
  systemClock,
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
import { totalWarning } from './total-check.ts';

export interface RunSyncOptions<Client> {
  source: string;
  stream: StreamDefinition<Client>;
  mode: SyncMode;
  client: Client;
  db: Db;
  logger: Logger;
  settings: Pick<SourceSettings, 'lookbackMs' | 'confirmMax'>;
  /** Every time the run decides with or stores (see "clock" in src/types.ts). @default systemClock */
  clock?: Clock;
  signal?: AbortSignal;
  jobId?: string;
  worker?: string;
  /** Where the slices of a split scan are read (default: in this process, one after another). */
  slices?: SliceDispatcher;
}

export interface RunResult {
  runId: bigint;
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
  const state = await loadState(db, source, stream.name);
  const runId = await startRun(db, {
    source,
    stream: stream.name,
    mode,
    watermarkBefore: state.watermark,
    jobId: options.jobId,
    worker: options.worker,
    startedAt: started,
  });
  const logger = options.logger.child({ source, stream: stream.name, runId: String(runId), jobId: options.jobId });
  if (abandoned > 0) logger.warn({ abandoned }, 'marked runs left unfinished by a stopped worker as abandoned');

  const counters = emptyCounters();
  const observer: RequestObserver = {
    onRequest: () => counters.apiCalls++,
    onRateLimited: () => counters.rateLimited++,
  };
  const resumed = state.progress[mode];
  const scan: ScanState = resumed ?? {
    scan: null,
    highMark: null,
    scanId: String(runId),
    startedAt: started.toISOString(),
  };
  logger.info({ mode, watermark: state.watermark, resumed: resumed !== undefined }, 'run started');

  const run: SlicingRun = { runId, scan, state, logger, sliced: false };
  const call = { signal: options.signal, observer };
  try {
    const context: ScanContext<Client> = {
      client: options.client,
      mode,
      watermark: state.watermark,
      lookbackMs: options.settings.lookbackMs,
      now: started,
      progress: resumed ? resumed.scan : null,
      call,
      logger,
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
          if (page.total !== undefined && page.total !== null) scan.reported = page.total;
          scan.highMark = raiseHighMark(scan.highMark, highestCursor(rows, stream.cursorField));
          await saveProgress(tx, source, stream.name, { ...state.progress, [mode]: scan }, now);
          await recordPage(tx, runId, now, counters);
        },
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
    // newer ones. Its watermark stops at the scan's start, without the clock-skew tolerance.
    const watermarkAfter = nextWatermark(
      state.watermark,
      scan.highMark,
      new Date(scan.startedAt),
      run.sliced ? 0 : undefined,
    );
    await db.$transaction(async (tx) => {
      const { [mode]: _finished, ...others } = state.progress;
      const now = clock.now();
      const fullScanStartedAt = mode === 'full' ? new Date(scan.startedAt) : undefined;
      await completeScan(tx, {
        source,
        stream: stream.name,
        runId,
        watermark: watermarkAfter,
        progress: others,
        fullScanStartedAt,
        now,
      });
      if (!(await finishRun(tx, runId, 'succeeded', counters, now, { watermarkAfter, warnings, add: run.sliced })))
        throw supersededError(runId);
    });
    if (run.sliced) Object.assign(counters, await runCounters(db, runId));
    if (mode === 'full') await clearScan(db, BigInt(scan.scanId));
    const durationMs = clock.now().getTime() - started.getTime();
    logger.info({ ...counters, watermarkAfter, durationMs }, 'run succeeded');
    return {
      runId,
      source,
      stream: stream.name,
      mode,
      counters,
      watermarkBefore: state.watermark,
      watermarkAfter,
      durationMs,
    };
  } catch (error) {
    const interrupted =
      error instanceof AbortedError || error instanceof RateLimitedError || options.signal?.aborted === true;
    const reason = options.signal?.reason instanceof AbortedError ? options.signal.reason : error;
    const message = reason instanceof Error ? reason.message : String(reason);
    await finishRun(db, runId, interrupted ? 'interrupted' : 'failed', counters, clock.now(), {
      error: message,
      add: run.sliced,
    }).catch((cause: unknown) => logger.error({ err: cause }, 'could not record the end of the run'));
    logger[interrupted ? 'warn' : 'error'](
      { err: error, ...counters },
      interrupted ? 'run interrupted; the scan resumes later' : 'run failed',
    );
    throw error;
  }
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
