/**
 * The run ledger (`sync_runs`) and the stream state (`sync_state`). Small typed Prisma calls: the hot,
 * set-based writes live in src/db/write-page.ts.
 */
import type { PrismaClient } from '../generated/prisma/client.ts';
import type { Json, RunCounters, SyncMode } from '../types.ts';
import { AbortedError } from '../errors.ts';
import { maskPersonalData } from '../logger.ts';
import { storableCopy } from '../db/unstorable.ts';

export type Db = PrismaClient;
export type Tx = Parameters<Parameters<PrismaClient['$transaction']>[0]>[0];

export type RunStatus = 'running' | 'succeeded' | 'failed' | 'interrupted' | 'abandoned';

/** What the engine keeps in `sync_state.progress` for each mode's unfinished scan. */
export interface ScanState {
  /** The stream's own paging progress. */
  scan: Json;
  /** Highest cursor value seen by this scan so far (UTC ISO). */
  highMark: string | null;
  /** Identifies the scan across the runs that finish it (keys seen by a full scan are filed under it). */
  scanId: string;
  startedAt: string;
  [key: string]: Json;
}

export type ProgressByMode = Partial<Record<SyncMode, ScanState>>;

export async function loadState(db: Db, source: string, stream: string) {
  const state = await db.syncState.upsert({
    where: { source_stream: { source, stream } },
    create: { source, stream },
    update: {},
  });
  return { watermark: state.watermark, progress: (state.progress ?? {}) as ProgressByMode, lastSuccessAt: state.lastSuccessAt };
}

/**
 * Runs left "running" by a process that died. Call only while holding the source's lock: then no live
 * run of that source exists, so every such row is abandoned.
 */
export async function abandonRunning(db: Db, source: string, stream: string): Promise<number> {
  const { count } = await db.syncRun.updateMany({
    where: { source, stream, status: 'running' },
    data: { status: 'abandoned', finishedAt: new Date(), error: 'the worker running it stopped before it finished' },
  });
  return count;
}

export async function startRun(
  db: Db,
  run: { source: string; stream: string; mode: SyncMode; watermarkBefore: Date | null; jobId?: string; worker?: string },
): Promise<bigint> {
  const row = await db.syncRun.create({ data: { ...run, status: 'running' } });
  return row.id;
}

/** The error of a run that a later run has marked abandoned: it stops, and nothing more of it commits. */
export const supersededError = (runId: bigint) =>
  new AbortedError(`run ${runId} is no longer running (a later run took over its source); nothing more of it is committed`);

/**
 * Counts a committed page in the run, in the page's transaction — and fences it: a run that a later run
 * has marked abandoned (its lock was lost, see src/db/source-lock.ts) may not commit anything more, so the
 * transaction is rolled back. Without counters, only the heartbeat and the fence (a sliced scan's progress).
 */
export async function recordPage(tx: Tx, runId: bigint, counters?: RunCounters): Promise<void> {
  const { count } = await tx.syncRun.updateMany({ where: { id: runId, status: 'running' }, data: { ...counters, heartbeatAt: new Date() } });
  if (count === 0) throw supersededError(runId);
}

export async function saveProgress(tx: Tx, source: string, stream: string, progress: ProgressByMode): Promise<void> {
  await tx.syncState.update({
    where: { source_stream: { source, stream } },
    // Progress holds keys the server sent (anchors): one jsonb refuses (a lone surrogate) must not stop the scan.
    data: { progress: storableCopy(progress, Infinity) as object, updatedAt: new Date() },
  });
}

/**
 * Adds a slice's page to the counters of the run that currently owns the scan (named in the scan's saved
 * state), in the page's own transaction: every committed page is counted once, in the run that was current
 * when it committed, whichever process read it.
 */
export async function countSlicePage(tx: Tx, scan: { source: string; stream: string; mode: SyncMode }, delta: RunCounters): Promise<void> {
  await tx.$executeRaw`
    UPDATE sync_runs SET
      pages = pages + ${delta.pages}, fetched = fetched + ${delta.fetched}, inserted = inserted + ${delta.inserted},
      updated = updated + ${delta.updated}, unchanged = unchanged + ${delta.unchanged}, rejected = rejected + ${delta.rejected},
      api_calls = api_calls + ${delta.apiCalls}, rate_limited = rate_limited + ${delta.rateLimited}, heartbeat_at = now()
    WHERE id = (SELECT (progress #>> ARRAY[${scan.mode}, 'runId'])::bigint FROM sync_state WHERE source = ${scan.source} AND stream = ${scan.stream})`;
}

/** Distinct keys a full scan has stored so far (its scan_seen rows). */
export async function countScanSeen(db: Db, scanId: bigint): Promise<number> {
  return db.scanSeen.count({ where: { scanId } });
}

/** Reads back a run's counters (a sliced run's pages were counted by the slices). */
export async function runCounters(db: Db | Tx, runId: bigint): Promise<RunCounters> {
  const row = await db.syncRun.findUniqueOrThrow({ where: { id: runId } });
  const { pages, fetched, inserted, updated, unchanged, rejected, deleted, apiCalls, rateLimited } = row;
  return { pages, fetched, inserted, updated, unchanged, rejected, deleted, apiCalls, rateLimited };
}

/**
 * Ends a run. `counters` are written as they are, or — with `add` — added to what the row already holds
 * (a sliced run, whose pages the slices counted). Only a run still marked running can end: one a later
 * run marked abandoned keeps that status, and false is returned (the caller must then not move the
 * watermark: see supersededError).
 */
export async function finishRun(
  db: Db | Tx,
  runId: bigint,
  status: Exclude<RunStatus, 'running'>,
  counters: RunCounters,
  extra: { watermarkAfter?: Date | null; error?: string; warnings?: string[]; add?: boolean } = {},
): Promise<boolean> {
  const values = extra.add
    ? Object.fromEntries(Object.entries(counters).map(([key, value]) => [key, { increment: value }]))
    : counters;
  const { count } = await db.syncRun.updateMany({
    where: { id: runId, status: 'running' },
    data: {
      ...values,
      status,
      finishedAt: new Date(),
      heartbeatAt: new Date(),
      watermarkAfter: extra.watermarkAfter,
      error: extra.error === undefined ? undefined : maskPersonalData(extra.error).slice(0, 4000),
      warnings: extra.warnings === undefined ? undefined : extra.warnings.map((warning) => maskPersonalData(warning).slice(0, 1000)),
    },
  });
  return count === 1;
}
