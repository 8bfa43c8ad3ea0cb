/**
 * Slices: a full scan (or a first backfill) split into independent parts that any worker can read, so
 * throughput grows with workers until the source's rate limit binds. The run that planned them stays the
 * one run of its source: it waits for the slices, then sets the watermark and checks for vanished vouchers.
 */
import type { Logger } from '../logger.ts';
import { AbortedError } from '../errors.ts';
import { emptyCounters, type Json, type RequestObserver, type RunCounters, type StreamDefinition, type SyncMode } from '../types.ts';
import { highestCursor, raiseHighMark } from './cursor.ts';
import { countSlicePage, type Db } from './ledger.ts';
import { commitPage, mapPage } from './commit-page.ts';
import { prefetched } from './prefetch.ts';

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

/** Runs slices somewhere (the job layer: any worker) and reports each result as it arrives. */
export interface SliceDispatcher {
  run(tasks: SliceTask[], onDone: (task: SliceTask, result: SliceResult) => Promise<void>, signal?: AbortSignal): Promise<void>;
}

export interface RunSliceOptions<Client> {
  task: SliceTask;
  stream: StreamDefinition<Client>;
  client: Client;
  db: Db;
  logger: Logger;
  lookbackMs: number;
  /** Where a previous attempt of this slice stopped, and what it had counted. */
  resume?: { progress: Json; counters: RunCounters; highMark: string | null } | null;
  /** Called after each committed page, to save where the slice stands. */
  onPage?(state: { progress: Json; counters: RunCounters; highMark: string | null }): Promise<void>;
  signal?: AbortSignal;
}

export async function runSlice<Client>(options: RunSliceOptions<Client>): Promise<SliceResult> {
  const { task, stream, db } = options;
  if (!stream.scanSlice) throw new Error(`stream ${task.source}/${task.stream} cannot read slices`);
  const counters = options.resume ? { ...options.resume.counters } : emptyCounters();
  let highMark = options.resume?.highMark ?? null;
  let reported: number | null = null;
  // What happened since the last committed page: added to the run's counters with the next page.
  let delta = emptyCounters();
  const observer: RequestObserver = { onRequest: () => delta.apiCalls++, onRateLimited: () => delta.rateLimited++ };
  const pages = stream.scanSlice(
    {
      client: options.client,
      mode: task.mode,
      watermark: null,
      lookbackMs: options.lookbackMs,
      now: new Date(),
      progress: options.resume?.progress ?? null,
      call: { signal: options.signal, observer },
      logger: options.logger,
    },
    task.slice,
  );
  for await (const page of prefetched(pages)) {
    if (page.total !== undefined && page.total !== null) reported = page.total;
    // This page's counts; the request for the page fetched ahead meanwhile counts with the next page.
    const counted = delta;
    delta = emptyCounters();
    // Mapped before the transaction opens: it then holds its connection and row locks only for the writes.
    const mapped = mapPage(stream, page.records, new Date());
    const { rows } = await db.$transaction(async (tx) => {
      const committed = await commitPage(tx, stream, mapped, counted, {
        source: task.source,
        runId: BigInt(task.runId),
        scanId: task.mode === 'full' ? BigInt(task.scanId) : undefined,
        logger: options.logger,
      });
      await countSlicePage(tx, task, counted);
      return committed;
    });
    for (const key of Object.keys(counters) as (keyof RunCounters)[]) counters[key] += counted[key];
    highMark = raiseHighMark(highMark, highestCursor(rows, stream.cursorField));
    await options.onPage?.({ progress: page.progress, counters, highMark });
    if (options.signal?.aborted) throw new AbortedError('stopped after committing the current page');
  }
  return { highMark, counters, reported };
}

/** Runs the slices one after another in this process: for direct engine calls and tests. */
export function inlineDispatcher<Client>(deps: Omit<RunSliceOptions<Client>, 'task' | 'resume' | 'onPage'>): SliceDispatcher {
  return {
    async run(tasks, onDone, signal) {
      for (const task of tasks) {
        const result = await runSlice({ ...deps, task, signal });
        await onDone(task, result);
      }
    },
  };
}
