/**
 * The stream state (`sync_state`): a stream's watermark, and the progress of each mode's unfinished scan,
 * saved in the transaction of every committed page so that a later run resumes it.
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

/**
 * A completed scan: the new watermark, the progress of the other mode's scan (if any) kept, and the time of
 * the success; a full scan also records when it started (`lastFullScanAt`).
 */
export async function completeScan(
  tx: Tx,
  scan: {
    source: string;
    stream: string;
    runId: bigint;
    watermark: Date | null;
    progress: ProgressByMode;
    fullScanStartedAt?: Date;
    now: Date;
  },
): Promise<void> {
  await tx.syncState.update({
    where: { source_stream: { source: scan.source, stream: scan.stream } },
    data: {
      watermark: scan.watermark,
      progress: scan.progress as object,
      lastRunId: scan.runId,
      lastSuccessAt: scan.now,
      ...(scan.fullScanStartedAt === undefined ? {} : { lastFullScanAt: scan.fullScanStartedAt }),
      updatedAt: scan.now,
    },
  });
}
