/**
 * Slice orchestration: a full scan (or a first backfill) split into independent slices that any worker
 * can read, so throughput grows with workers until the source's rate limit binds. The run that planned
 * them stays the one run of its source: it waits for the slices, then sets the watermark and checks for
 * vanished vouchers (see run-sync.ts). How a CareCloud plan finds its boundaries: docs/design.md, "Work any
 * worker can take".
 */
import { randomUUID } from 'node:crypto';
import type { Db } from '../db/client.ts';
import { recordPage, runCounters } from '../db/ledger.ts';
import { saveScanProgress, type ScanState, type StreamState } from '../db/stream-state.ts';
import type { Logger } from '../logger.ts';
import type { Clock, Json, ScanContext, StreamDefinition, SyncMode } from '../types.ts';
import { raiseHighMark } from './cursor.ts';
import type { ProgressLog } from './progress-log.ts';
import { inlineDispatcher, type SliceDispatcher, type SliceResult, type SliceTask } from './run-slice.ts';

export interface ReadSlicesOptions<Client> {
  source: string;
  stream: StreamDefinition<Client>;
  mode: SyncMode;
  client: Client;
  db: Db;
  clock: Clock;
  lookbackMs: number;
  signal?: AbortSignal;
  /** Where the slices are read (default: in this process, one after another). */
  slices?: SliceDispatcher;
}

/** The run that reads the scan: its ledger row, the scan's saved state (updated here), its logger. */
export interface SlicingRun {
  runId: bigint;
  scan: ScanState;
  state: StreamState;
  logger: Logger;
  /** Set once the slices count their pages in this run: the run's own counters are then added to its row. */
  sliced: boolean;
  /** Where the run says how far it has come (the slices count in its row; it is read every interval). */
  progress?: ProgressLog;
  /** Records how many records the scan expects, once known. */
  estimate?(total: number): Promise<void>;
  /** How often the progress of a sliced run is read and logged, in ms. @default 30_000 */
  progressEveryMs?: number;
}

/**
 * What a plan says of the scan's size: a plan of offset ranges (CareCloud's `{start, end}`, the last open-ended)
 * covers about one slice more than its last start, less the first start (a backfill's plan starts inside the list).
 * Windows of cursors (Cin7) say nothing of their size: null.
 */
export function planEstimate(slices: Json[]): number | null {
  const ranges = slices.map((slice) => {
    const { start, end } = (typeof slice === 'object' && slice !== null && !Array.isArray(slice) ? slice : {}) as {
      start?: unknown;
      end?: unknown;
    };
    return typeof start === 'number' && (end === null || typeof end === 'number') ? { start, end } : null;
  });
  if (ranges.length === 0 || ranges.some((r) => r === null)) return null;
  const sizes = ranges.flatMap((r) => (r!.end === null ? [] : [r!.end - r!.start]));
  const last = ranges[ranges.length - 1]!;
  // A backfill's plan covers a part of the list: from its first start, not from 0.
  return (last.end ?? last.start + (sizes.length > 0 ? Math.max(...sizes) : 0)) - ranges[0]!.start;
}

/**
 * Splits a full scan or a first backfill into slices when the stream can, and waits for them; `run.sliced`
 * stays false when the scan is not split (the caller reads it page by page). Each slice's result is accounted once, in the
 * scan's saved state, so a run that resumes this scan after a crash or a shutdown neither waits for nor
 * counts again the slices an earlier run saw finish.
 */
export async function readSlices<Client>(
  options: ReadSlicesOptions<Client>,
  context: ScanContext<Client>,
  run: SlicingRun,
): Promise<void> {
  const { stream, mode, db, source, clock } = options;
  const { scan } = run;
  // A first backfill is split too; an account that is still empty after a run is not backfilled again
  // (its idle incremental run stays one request).
  const backfill = context.watermark === null && run.state.lastSuccessAt === null;
  // A backfill of a range is always read in slices (its plan finds the range: runSync checks the stream can).
  if (!stream.planSlices || !stream.scanSlice || (mode === 'incremental' && !backfill)) return;
  // Fenced as a page is: a run that a later run superseded must not overwrite the scan's progress.
  const save = () =>
    db.$transaction(async (tx) => {
      const now = clock.now();
      await recordPage(tx, run.runId, now);
      await saveScanProgress(tx, source, stream.name, mode, scan, now);
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
    return;
  }
  // From now on the slices count their pages in this run (see countSlicePage).
  scan.runId = String(run.runId);
  await save();
  run.sliced = true;
  const done = scan.done as unknown as Record<string, SliceResult>;
  const tasks: SliceTask[] = slices
    .map((slice, index) => ({
      source,
      stream: stream.name,
      mode,
      runId: String(run.runId),
      scanId: scan.scanId,
      key: String(scan.sliceKey),
      index,
      slice,
    }))
    .filter((task) => done[task.index] === undefined);
  run.logger.info({ slices: slices.length, pending: tasks.length }, 'reading the scan in slices');
  const estimated = planEstimate(slices);
  if (estimated !== null) await run.estimate?.(estimated);
  // The slices count their pages in this run's row, from whichever process reads them: the row is where to look.
  const { progress } = run;
  const ticker =
    progress &&
    setInterval(() => {
      runCounters(db, run.runId).then(
        (counters) => progress.report(counters),
        (error: unknown) => run.logger.debug({ err: error }, 'could not read the progress of the run'),
      );
    }, run.progressEveryMs ?? 30_000);
  ticker?.unref();
  const dispatcher =
    options.slices ??
    inlineDispatcher({ stream, client: options.client, db, logger: run.logger, lookbackMs: options.lookbackMs, clock });
  let saving = Promise.resolve();
  await dispatcher
    .run(
      tasks,
      (task, result) => {
        // Results can arrive together: save them one at a time.
        saving = saving.then(async () => {
          done[task.index] = result;
          if (typeof result.reported === 'number')
            scan.reported = Math.max(typeof scan.reported === 'number' ? scan.reported : 0, result.reported);
          scan.highMark = raiseHighMark(scan.highMark, result.highMark === null ? null : Date.parse(result.highMark));
          await save();
        });
        return saving;
      },
      options.signal,
    )
    .finally(() => clearInterval(ticker));
  await saving;
}
