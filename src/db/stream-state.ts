/**
 * The stream state (`sync_state`): a stream's watermark, and the progress of each mode's unfinished scan,
 * saved in the transaction of every committed page so that a later run resumes it.
 *
 * Runs of different modes interleave (a reconciliation spread over days by the budget plan, incremental runs between
 * its chunks, side runs beside them), each holding the state as it loaded it. So a run writes only its own mode's
 * progress (saveScanProgress, completeScan: one key of the jsonb), and the watermark only ever rises (GREATEST):
 * neither can write back a watermark or a saved progress older than the other's.
 */
import type { Json, SyncMode } from '../types.ts';
import type { Db, Tx } from './client.ts';
import { storableCopy } from './unstorable.ts';

/** What the engine keeps in `sync_state.progress` for each mode's unfinished scan. */
export interface ScanState {
  /** The stream's own paging progress (its position). */
  scan: Json;
  /** Highest cursor value seen by this scan so far (UTC ISO). */
  highMark: string | null;
  /** Identifies the scan across the runs that finish it (keys seen by a full scan are filed under it). */
  scanId: string;
  startedAt: string;
  [key: string]: Json;
}

export type ProgressByMode = Partial<Record<SyncMode, ScanState>>;

export interface StreamState {
  watermark: Date | null;
  progress: ProgressByMode;
  lastSuccessAt: Date | null;
}

export async function loadState(db: Db | Tx, source: string, stream: string): Promise<StreamState> {
  const state = await db.syncState.upsert({
    where: { source_stream: { source, stream } },
    create: { source, stream },
    update: {},
  });
  return {
    watermark: state.watermark,
    progress: (state.progress ?? {}) as ProgressByMode,
    lastSuccessAt: state.lastSuccessAt,
  };
}

export async function saveProgress(
  tx: Tx,
  source: string,
  stream: string,
  progress: ProgressByMode,
  now: Date,
): Promise<void> {
  await tx.syncState.update({
    where: { source_stream: { source, stream } },
    // Progress holds keys the server sent (anchors): one jsonb refuses (a lone surrogate) must not stop the scan.
    data: { progress: storableCopy(progress, Infinity) as object, updatedAt: now },
  });
}

/** Saves one mode's scan progress, leaving every other mode's as it stands in the row (not as this run loaded it). */
export async function saveScanProgress(
  tx: Tx,
  source: string,
  stream: string,
  mode: SyncMode,
  scan: ScanState,
  now: Date,
): Promise<void> {
  // Progress holds keys the server sent (anchors): one jsonb refuses (a lone surrogate) must not stop the scan.
  const value = JSON.stringify(storableCopy(scan, Infinity));
  await tx.$executeRaw`
    UPDATE sync_state
    SET progress = jsonb_set(coalesce(progress, '{}'::jsonb), ARRAY[${mode}::text], ${value}::jsonb), updated_at = ${now}
    WHERE source = ${source} AND stream = ${stream}`;
}

/** Removes one mode's saved scan (a backfill range done), leaving every other mode's as it stands in the row. */
export async function clearScanProgress(
  tx: Tx,
  source: string,
  stream: string,
  mode: SyncMode,
  now: Date,
): Promise<void> {
  await tx.$executeRaw`
    UPDATE sync_state SET progress = coalesce(progress, '{}'::jsonb) - ${mode}::text, updated_at = ${now}
    WHERE source = ${source} AND stream = ${stream}`;
}

/**
 * A completed scan of `mode`: its progress removed (the other modes' kept as they stand), the watermark raised to the
 * new one (never lowered: an incremental run that finished meanwhile may hold a newer one), and the time of the
 * success; a full scan also records when it started (`lastFullScanAt`, never moved back either), and a scan that read
 * every change (`completeAsOf`: see runSync) the time up to which the stream's data is complete (`complete_as_of`, the
 * "data as of" of reporting.sync_status, never moved back either).
 */
export async function completeScan(
  tx: Tx,
  scan: {
    source: string;
    stream: string;
    mode: SyncMode;
    runId: bigint;
    watermark: Date | null;
    fullScanStartedAt?: Date;
    completeAsOf?: Date;
    now: Date;
  },
): Promise<void> {
  const fullScanAt = scan.fullScanStartedAt ?? null;
  const completeAt = scan.completeAsOf ?? null;
  await tx.$executeRaw`
    UPDATE sync_state SET
      watermark = GREATEST(watermark, ${scan.watermark}::timestamptz),
      progress = coalesce(progress, '{}'::jsonb) - ${scan.mode}::text,
      last_run_id = ${scan.runId},
      last_success_at = ${scan.now},
      last_full_scan_at = GREATEST(last_full_scan_at, ${fullScanAt}::timestamptz),
      complete_as_of = GREATEST(complete_as_of, ${completeAt}::timestamptz),
      updated_at = ${scan.now}
    WHERE source = ${scan.source} AND stream = ${scan.stream}`;
}

/**
 * Forgets where a source's streams stand (`voucher-sync reset`): watermark, saved scans and last success, so that the
 * next run is a first backfill (rows are kept). Returns each stream's state as it was, for the command to report.
 * The caller holds the source's lock, so that no run writes its own back meanwhile.
 */
export async function forgetStreamStates(
  tx: Tx,
  source: string,
  now: Date,
): Promise<{ stream: string; watermark: Date | null; progress: ProgressByMode }[]> {
  const before = await tx.syncState.findMany({ where: { source }, orderBy: { stream: 'asc' } });
  await tx.$executeRaw`
    UPDATE sync_state SET watermark = NULL, progress = NULL, last_success_at = NULL, updated_at = ${now}
    WHERE source = ${source}`;
  return before.map((s) => ({
    stream: s.stream,
    watermark: s.watermark,
    progress: (s.progress ?? {}) as ProgressByMode,
  }));
}
