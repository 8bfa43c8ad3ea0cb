/**
 * The run ledger (`sync_runs`): one row per run, its counters and how it ended. Times are the engine's
 * clock, handed in as `now` (see the glossary in src/types.ts: "clock").
 */
import type { RunCounters, SyncMode } from '../types.ts';
import { AbortedError } from '../errors.ts';
import { maskPersonalData } from '../logger.ts';
import type { Db, Tx } from './client.ts';

export type RunStatus = 'running' | 'succeeded' | 'failed' | 'interrupted' | 'abandoned';

/**
 * Runs left "running" by a process that died. Call only while holding the source's lock: then no live
 * run of that source exists, so every such row is abandoned.
 */
export async function abandonRunning(db: Db | Tx, source: string, stream: string, now: Date): Promise<number> {
  const { count } = await db.syncRun.updateMany({
    where: { source, stream, status: 'running' },
    data: { status: 'abandoned', finishedAt: now, error: 'the worker running it stopped before it finished' },
  });
  return count;
}

export async function startRun(
  db: Db | Tx,
  run: {
    source: string;
    stream: string;
    mode: SyncMode;
    watermarkBefore: Date | null;
    jobId?: string;
    worker?: string;
    startedAt: Date;
  },
): Promise<bigint> {
  const row = await db.syncRun.create({ data: { ...run, status: 'running', heartbeatAt: run.startedAt } });
  return row.id;
}

/** The error of a run that a later run has marked abandoned: it stops, and nothing more of it commits. */
export const supersededError = (runId: bigint) =>
  new AbortedError(
    `run ${runId} is no longer running (a later run took over its source); nothing more of it is committed`,
  );

/**
 * Counts a committed page in the run, in the page's transaction — and fences it: a run that a later run
 * has marked abandoned (its lock was lost, see src/db/source-lock.ts) may not commit anything more, so the
 * transaction is rolled back. Without counters, only the heartbeat and the fence (a sliced scan's progress).
 */
export async function recordPage(tx: Tx, runId: bigint, now: Date, counters?: RunCounters): Promise<void> {
  const { count } = await tx.syncRun.updateMany({
    where: { id: runId, status: 'running' },
    data: { ...counters, heartbeatAt: now },
  });
  if (count === 0) throw supersededError(runId);
}

/**
 * Adds a slice's page to the counters of the run that currently owns the scan (named in the scan's saved
 * state, see src/db/stream-state.ts), in the page's own transaction: every committed page is counted once,
 * in the run that was current when it committed, whichever process read it.
 */
export async function countSlicePage(
  tx: Tx,
  scan: { source: string; stream: string; mode: SyncMode },
  delta: RunCounters,
  now: Date,
): Promise<void> {
  await tx.$executeRaw`
    UPDATE sync_runs SET
      pages = pages + ${delta.pages}, fetched = fetched + ${delta.fetched}, inserted = inserted + ${delta.inserted},
      updated = updated + ${delta.updated}, unchanged = unchanged + ${delta.unchanged}, rejected = rejected + ${delta.rejected},
      api_calls = api_calls + ${delta.apiCalls}, rate_limited = rate_limited + ${delta.rateLimited}, heartbeat_at = ${now}
    WHERE id = (SELECT (progress #>> ARRAY[${scan.mode}, 'runId'])::bigint FROM sync_state WHERE source = ${scan.source} AND stream = ${scan.stream})`;
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
  now: Date,
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
      finishedAt: now,
      heartbeatAt: now,
      watermarkAfter: extra.watermarkAfter,
      error: extra.error === undefined ? undefined : maskPersonalData(extra.error).slice(0, 4000),
      warnings:
        extra.warnings === undefined
          ? undefined
          : extra.warnings.map((warning) => maskPersonalData(warning).slice(0, 1000)),
    },
  });
  return count === 1;
}
