/**
 * Reading one slice of a split scan (see read-slices.ts for the plan and the run that waits for it), and
 * the dispatcher that reads slices in this process, one after another.
 */
import type { Db } from '../db/client.ts';
import { countSlicePage } from '../db/ledger.ts';
import type { Logger } from '../logger.ts';
import {
  addCounters,
  emptyCounters,
  systemClock,
  type Clock,
  type Json,
  type RequestObserver,
  type RunCounters,
  type StreamDefinition,
  type SyncMode,
} from '../types.ts';
import { highestCursor, raiseHighMark } from './cursor.ts';
import { commitPages } from './page-loop.ts';
import { shareOfMode } from './budget-plan.ts';
import { openPageSizing } from './page-size.ts';

/** What a finished slice reports to the run that planned it. */
export interface SliceResult {
  highMark: string | null;
  counters: RunCounters;
  /** The last total the server reported while the slice read (CareCloud `total_items`); absent when none. */
  reported?: number | null;
}

export interface SliceTask {
  source: string;
  stream: string;
  mode: SyncMode;
  runId: string;
  scanId: string;
  /** Unique name of the scan's plan of slices (see readSlices). */
  key: string;
  index: number;
  slice: Json;
}

/** Where a slice stands after a committed page: its position, what it counted, its highest cursor. */
export interface SliceProgress {
  progress: Json;
  counters: RunCounters;
  highMark: string | null;
}

/** Runs slices somewhere (the job layer: any worker) and reports each result as it arrives. */
export interface SliceDispatcher {
  run(
    tasks: SliceTask[],
    onDone: (task: SliceTask, result: SliceResult) => Promise<void>,
    signal?: AbortSignal,
  ): Promise<void>;
}

export interface RunSliceOptions<Client> {
  task: SliceTask;
  stream: StreamDefinition<Client>;
  client: Client;
  db: Db;
  logger: Logger;
  lookbackMs: number;
  /** @default systemClock */
  clock?: Clock;
  /** Where a previous attempt of this slice stopped, and what it had counted. */
  resume?: SliceProgress | null;
  /** Called after each committed page, to save where the slice stands. */
  onPage?(state: SliceProgress): Promise<void>;
  signal?: AbortSignal;
}

export async function runSlice<Client>(options: RunSliceOptions<Client>): Promise<SliceResult> {
  const { task, stream, db, clock = systemClock } = options;
  if (!stream.scanSlice) throw new Error(`stream ${task.source}/${task.stream} cannot read slices`);
  const counters = options.resume ? { ...options.resume.counters } : emptyCounters();
  let highMark = options.resume?.highMark ?? null;
  let reported: number | null = null;
  // What happened since the last committed page: added to the run's counters with the next page.
  let delta = emptyCounters();
  const observer: RequestObserver = { onRequest: () => delta.apiCalls++, onRateLimited: () => delta.rateLimited++ };
  // Read now, not when the run planned: another slice may have found the source's maximum lowered since.
  const pageSizing = await openPageSizing(db, { source: task.source, stream, logger: options.logger, clock });
  const pages = stream.scanSlice(
    {
      client: options.client,
      mode: task.mode,
      watermark: null,
      lookbackMs: options.lookbackMs,
      now: clock.now(),
      progress: options.resume?.progress ?? null,
      call: { signal: options.signal, observer, share: shareOfMode(task.mode) },
      logger: options.logger,
      pageSizing,
    },
    task.slice,
  );
  await commitPages({
    stream,
    pages,
    db,
    clock,
    signal: options.signal,
    commit: {
      source: task.source,
      runId: BigInt(task.runId),
      scanId: task.mode === 'full' ? BigInt(task.scanId) : undefined,
      logger: options.logger,
    },
    // This page's counts; the request for the page fetched ahead meanwhile counts with the next page.
    countersFor: () => {
      const counted = delta;
      delta = emptyCounters();
      return counted;
    },
    checkpoint: (tx, { counted, now }) => countSlicePage(tx, task, counted, now),
    committed: async ({ page, rows, counted }) => {
      if (page.total !== undefined && page.total !== null) reported = page.total;
      addCounters(counters, counted);
      highMark = raiseHighMark(highMark, highestCursor(rows, stream.cursorField));
      await options.onPage?.({ progress: page.progress, counters, highMark });
    },
  });
  return { highMark, counters, reported };
}

/** Runs the slices one after another in this process: for direct engine calls and tests. */
export function inlineDispatcher<Client>(
  deps: Omit<RunSliceOptions<Client>, 'task' | 'resume' | 'onPage'>,
): SliceDispatcher {
  return {
    async run(tasks, onDone, signal) {
      for (const task of tasks) {
        const result = await runSlice({ ...deps, task, signal });
        await onDone(task, result);
      }
    },
  };
}
