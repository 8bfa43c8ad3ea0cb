/**
 * runSync: one run of one stream of one source. Everything arrives as an argument (client, database,
 * logger, clock, abort signal), so tests hand it a fake server and a frozen clock.
 *
 * Per page, in one transaction: the rows (one set-based statement), the rejected records, the scan's
 * progress and the ledger's counters. The watermark moves only when the scan completes, and never past
 * what was seen. The caller must hold the source's lock (see src/db/source-lock.ts).
 */
import { randomUUID } from 'node:crypto';
import { AbortedError, RateLimitedError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { writePage } from '../db/write-page.ts';
import { commitPage, mapPage } from './commit-page.ts';
import { remapIfMappingChanged } from '../db/remap-rows.ts';
import { prefetched } from './prefetch.ts';
import { inlineDispatcher, type SliceDispatcher, type SliceResult, type SliceTask } from './run-slice.ts';
import { clearScan, listUnseen, markVanished } from '../db/vanished.ts';
import {
  emptyCounters,
  systemClock,
  type Clock,
  type RequestObserver,
  type RunCounters,
  type SourceSettings,
  type StreamDefinition,
  type Json,
  type ScanContext,
  type SyncMode,
} from '../types.ts';
import { highestCursor, nextWatermark, raiseHighMark } from './cursor.ts';
import { totalWarning } from './total-check.ts';
import {
  abandonRunning,
  countScanSeen,
  finishRun,
  loadState,
  recordPage,
  runCounters,
  saveProgress,
  startRun,
  supersededError,
  type Db,
  type ProgressByMode,
  type ScanState,
} from './ledger.ts';

export interface RunSyncOptions<Client> {
  source: string;
  stream: StreamDefinition<Client>;
  mode: SyncMode;
  client: Client;
  db: Db;
  logger: Logger;
  settings: Pick<SourceSettings, 'lookbackMs' | 'confirmMax'>;
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
  await remapIfMappingChanged(db, { source, stream, logger: options.logger });
  const abandoned = await abandonRunning(db, source, stream.name);
  const state = await loadState(db, source, stream.name);
  const runId = await startRun(db, { source, stream: stream.name, mode, watermarkBefore: state.watermark, jobId: options.jobId, worker: options.worker });
  const logger = options.logger.child({ source, stream: stream.name, runId: String(runId), jobId: options.jobId });
  if (abandoned > 0) logger.warn({ abandoned }, 'marked runs left unfinished by a stopped worker as abandoned');

  const counters = emptyCounters();
  const observer: RequestObserver = { onRequest: () => counters.apiCalls++, onRateLimited: () => counters.rateLimited++ };
  const resumed = state.progress[mode];
  const scan: ScanState = resumed ?? { scan: null, highMark: null, scanId: String(runId), startedAt: started.toISOString() };
  logger.info({ mode, watermark: state.watermark, resumed: resumed !== undefined }, 'run started');

  const slicing = { runId, scan, state, counters, logger, sliced: false };
  try {
    const context = {
      client: options.client,
      mode,
      watermark: state.watermark,
      lookbackMs: options.settings.lookbackMs,
      now: started,
      progress: resumed ? resumed.scan : null,
      call: { signal: options.signal, observer },
      logger,
    };
    await readSlices(options, context, slicing);
    if (!slicing.sliced) {
      for await (const page of prefetched(stream.scan(context))) {
        const mapped = mapPage(stream, page.records, clock.now());
        await db.$transaction(async (tx) => {
          const scanId = mode === 'full' ? BigInt(scan.scanId) : undefined;
          const { rows } = await commitPage(tx, stream, mapped, counters, { source, runId, scanId, logger });
          scan.scan = page.progress;
          if (page.total !== undefined && page.total !== null) scan.reported = page.total;
          scan.highMark = raiseHighMark(scan.highMark, highestCursor(rows, stream.cursorField));
          await saveProgress(tx, source, stream.name, { ...state.progress, [mode]: scan });
          await recordPage(tx, runId, counters);
        });
        if (options.signal?.aborted) throw stopped(options.signal);
      }
    }
    if (options.signal?.aborted) throw stopped(options.signal);
    if (mode === 'full') counters.deleted += await removeVanished(options, runId, scan, observer, counters, logger);
    const warnings = mode === 'full' ? await scanWarnings(options, scan, counters, slicing.sliced ? await runCounters(db, runId) : null) : [];
    for (const warning of warnings) logger.warn({ warning }, 'the run succeeded with a warning');
    // A scan read in slices has read everything only as it stood when the scan started: a voucher changed
    // later, in a range a slice had already passed, is read by no slice, while another slice may still read
    // newer ones. Its watermark stops at the scan's start, without the clock-skew tolerance.
    const watermarkAfter = nextWatermark(state.watermark, scan.highMark, new Date(scan.startedAt), slicing.sliced ? 0 : undefined);
    await db.$transaction(async (tx) => {
      const { [mode]: _finished, ...others } = state.progress;
      await tx.syncState.update({
        where: { source_stream: { source, stream: stream.name } },
        data: {
          watermark: watermarkAfter,
          progress: others,
          lastRunId: runId,
          lastSuccessAt: clock.now(),
          ...(mode === 'full' ? { lastFullScanAt: new Date(scan.startedAt) } : {}),
          updatedAt: new Date(),
        },
      });
      if (!(await finishRun(tx, runId, 'succeeded', counters, { watermarkAfter, warnings, add: slicing.sliced }))) throw supersededError(runId);
    });
    if (slicing.sliced) Object.assign(counters, await runCounters(db, runId));
    if (mode === 'full') await clearScan(db, BigInt(scan.scanId));
    const durationMs = clock.now().getTime() - started.getTime();
    logger.info({ ...counters, watermarkAfter, durationMs }, 'run succeeded');
    return { runId, source, stream: stream.name, mode, counters, watermarkBefore: state.watermark, watermarkAfter, durationMs };
  } catch (error) {
    const interrupted = error instanceof AbortedError || error instanceof RateLimitedError || options.signal?.aborted === true;
    const reason = options.signal?.reason instanceof AbortedError ? options.signal.reason : error;
    const message = reason instanceof Error ? reason.message : String(reason);
    await finishRun(db, runId, interrupted ? 'interrupted' : 'failed', counters, { error: message, add: slicing.sliced }).catch((cause: unknown) =>
      logger.error({ err: cause }, 'could not record the end of the run'),
    );
    logger[interrupted ? 'warn' : 'error']({ err: error, ...counters }, interrupted ? 'run interrupted; the scan resumes later' : 'run failed');
    throw error;
  }
}

/**
 * What a completed full scan has to report: a total the server reported that the distinct records the
 * scan stored (its scan_seen rows) and rejected do not explain (see total-check.ts). A sliced scan's
 * rejections were counted in the ledger row by its slices (`counted`).
 */
async function scanWarnings<Client>(options: RunSyncOptions<Client>, scan: ScanState, counters: RunCounters, counted: RunCounters | null): Promise<string[]> {
  const reported = typeof scan.reported === 'number' ? scan.reported : null;
  if (reported === null) return [];
  const read = await countScanSeen(options.db, BigInt(scan.scanId));
  const warning = totalWarning({ source: options.source, read, rejected: counters.rejected + (counted?.rejected ?? 0), reported });
  return warning === null ? [] : [warning];
}

/** Why a run stops at a page boundary: the signal's own reason (a lost source lock), or a shutdown. */
function stopped(signal: AbortSignal): AbortedError {
  return signal.reason instanceof AbortedError ? signal.reason : new AbortedError('stopped after committing the current page');
}

/**
 * After a full scan: vouchers we hold that the scan did not see are re-read one by one (up to the
 * source's confirmation budget). Those found are refreshed; those gone are marked deleted. Candidates
 * beyond the budget wait for the next full scan rather than being deleted on a single miss.
 */
async function removeVanished<Client>(
  options: RunSyncOptions<Client>,
  runId: bigint,
  scan: ScanState,
  observer: RequestObserver,
  counters: RunCounters,
  logger: Logger,
): Promise<number> {
  const { db, source, stream } = options;
  const scanId = BigInt(scan.scanId);
  const limit = stream.lookup ? options.settings.confirmMax : 100_000;
  const candidates = await listUnseen(db, { source, scanId, scanStartedAt: new Date(scan.startedAt), limit: limit + 1 });
  const checked = candidates.slice(0, limit);
  if (candidates.length > limit) logger.warn({ confirmMax: limit }, 'more vouchers are missing than this run may confirm; the rest wait for the next full scan');
  if (checked.length === 0) return 0;
  let gone = checked;
  if (stream.lookup) {
    const found = await stream.lookup(options.client, checked, { signal: options.signal, observer });
    const { rows, rejects } = mapPage(stream, found);
    const alive = new Set([...rows.map((r) => r.sourceId), ...rejects.flatMap((r) => (r.sourceId ? [r.sourceId] : []))]);
    const written = await writePage(db, { source, stream: stream.name, runId, rows, rejects, scanId });
    counters.updated += written.updated;
    counters.unchanged += written.unchanged;
    counters.rejected += written.rejected;
    gone = checked.filter((key) => !alive.has(key));
  }
  const deleted = await markVanished(db, { source, scanId, sourceIds: gone, runId });
  if (deleted > 0) logger.info({ deleted }, 'marked vouchers that vanished from the source as deleted');
  return deleted;
}

/**
 * Splits a full scan or a first backfill into slices when the stream can, and waits for them. Each slice's
 * result is accounted once, in the scan's saved state, so a run that resumes this scan after a crash or a
 * shutdown neither waits for nor counts again the slices an earlier run saw finish.
 */
async function readSlices<Client>(
  options: RunSyncOptions<Client>,
  context: ScanContext<Client>,
  run: { runId: bigint; scan: ScanState; state: { progress: ProgressByMode; lastSuccessAt: Date | null }; counters: RunCounters; logger: Logger; sliced: boolean },
): Promise<boolean> {
  const { stream, mode, db, source } = options;
  const { scan } = run;
  // A first backfill is split too; an account that is still empty after a run is not backfilled again
  // (its idle incremental run stays one request).
  const backfill = context.watermark === null && run.state.lastSuccessAt === null;
  if (!stream.planSlices || !stream.scanSlice || (mode !== 'full' && !backfill)) return false;
  // Fenced as a page is: a run that a later run superseded must not overwrite the scan's progress.
  const save = () =>
    db.$transaction(async (tx) => {
      await recordPage(tx, run.runId);
      await saveProgress(tx, source, stream.name, { ...run.state.progress, [mode]: scan });
    });
  if (scan.slices === undefined) {
    scan.slices = await stream.planSlices(context);
    scan.done = {};
    // Names this plan's slices wherever they travel: unique across databases and resets that share one
    // Redis, so a new scan can never be handed the finished slices of an old one.
    scan.sliceKey = randomUUID();
  }
  const slices = scan.slices as Json[] | null;
  if (slices === null) {
    await save();
    return false;
  }
  // From now on the slices count their pages in this run (see countSlicePage).
  scan.runId = String(run.runId);
  await save();
  run.sliced = true;
  const done = scan.done as unknown as Record<string, SliceResult>;
  const tasks: SliceTask[] = slices
    .map((slice, index) => ({ source, stream: stream.name, mode, runId: String(run.runId), scanId: scan.scanId, key: String(scan.sliceKey), index, slice }))
    .filter((task) => done[task.index] === undefined);
  run.logger.info({ slices: slices.length, pending: tasks.length }, 'reading the scan in slices');
  const dispatcher = options.slices ?? inlineDispatcher({ stream, client: options.client, db, logger: run.logger, lookbackMs: options.settings.lookbackMs });
  let saving = Promise.resolve();
  await dispatcher.run(
    tasks,
    (task, result) => {
      // Results can arrive together: save them one at a time.
      saving = saving.then(async () => {
        done[task.index] = result;
        if (typeof result.reported === 'number') scan.reported = Math.max(typeof scan.reported === 'number' ? scan.reported : 0, result.reported);
        scan.highMark = raiseHighMark(scan.highMark, result.highMark === null ? null : Date.parse(result.highMark));
        await save();
      });
      return saving;
    },
    options.signal,
  );
  await saving;
  return true;
}
