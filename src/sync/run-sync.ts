/**
 * runSync: one run of one stream of one source. Everything arrives as an argument (client, database,
 * logger, clock, abort signal), so tests hand it a fake server and a frozen clock.
 *
 * Per page, in one transaction: the rows (one set-based statement), the rejected records, the scan's
 * progress and the ledger's counters. The watermark moves only when the scan completes, and never past
 * what was seen. The caller must hold the source's lock (see src/db/source-lock.ts).
 */
import { AbortedError, RateLimitedError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { writePage } from '../db/write-page.ts';
import { clearScan, listUnseen, markVanished } from '../db/vanished.ts';
import {
  emptyCounters,
  systemClock,
  type Clock,
  type RequestObserver,
  type RunCounters,
  type SourceSettings,
  type StreamDefinition,
  type SyncMode,
  type VoucherRow,
  type RejectedRow,
} from '../types.ts';
import { highestCursor, nextWatermark, raiseHighMark } from './cursor.ts';
import { abandonRunning, finishRun, loadState, recordPage, saveProgress, startRun, type Db, type ScanState } from './ledger.ts';

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

  try {
    const pages = stream.scan({
      client: options.client,
      mode,
      watermark: state.watermark,
      lookbackMs: options.settings.lookbackMs,
      now: started,
      progress: resumed ? resumed.scan : null,
      call: { signal: options.signal, observer },
    });
    for await (const page of pages) {
      const { rows, rejects } = mapPage(stream, page.records);
      scan.scan = page.progress;
      scan.highMark = raiseHighMark(scan.highMark, highestCursor(rows, stream.cursorField));
      await db.$transaction(async (tx) => {
        const written = await writePage(tx, {
          source,
          stream: stream.name,
          runId,
          rows,
          rejects,
          scanId: mode === 'full' ? BigInt(scan.scanId) : undefined,
        });
        counters.pages++;
        counters.fetched += page.records.length;
        counters.inserted += written.inserted;
        counters.updated += written.updated;
        counters.unchanged += written.unchanged;
        counters.rejected += written.rejected;
        await saveProgress(tx, source, stream.name, { ...state.progress, [mode]: scan });
        await recordPage(tx, runId, counters);
      });
      for (const reject of rejects) logger.warn({ sourceId: reject.sourceId, reason: reject.reason }, 'record rejected');
      if (options.signal?.aborted) throw new AbortedError('stopped after committing the current page');
    }
    if (mode === 'full') counters.deleted += await removeVanished(options, runId, scan, observer, counters, logger);
    const watermarkAfter = nextWatermark(state.watermark, scan.highMark, new Date(scan.startedAt));
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
      await finishRun(tx, runId, 'succeeded', counters, { watermarkAfter });
    });
    if (mode === 'full') await clearScan(db, BigInt(scan.scanId));
    const durationMs = clock.now().getTime() - started.getTime();
    logger.info({ ...counters, watermarkAfter, durationMs }, 'run succeeded');
    return { runId, source, stream: stream.name, mode, counters, watermarkBefore: state.watermark, watermarkAfter, durationMs };
  } catch (error) {
    const interrupted = error instanceof AbortedError || error instanceof RateLimitedError || options.signal?.aborted === true;
    const message = error instanceof Error ? error.message : String(error);
    await finishRun(db, runId, interrupted ? 'interrupted' : 'failed', counters, { error: message }).catch((cause: unknown) =>
      logger.error({ err: cause }, 'could not record the end of the run'),
    );
    logger[interrupted ? 'warn' : 'error']({ err: error, ...counters }, interrupted ? 'run interrupted; the scan resumes later' : 'run failed');
    throw error;
  }
}

function mapPage<Client>(stream: StreamDefinition<Client>, records: unknown[]): { rows: VoucherRow[]; rejects: RejectedRow[] } {
  const rows: VoucherRow[] = [];
  const rejects: RejectedRow[] = [];
  for (const raw of records) {
    const result = stream.map(raw);
    if (result.ok) rows.push(result.row);
    else rejects.push(result.reject);
  }
  return { rows, rejects };
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
