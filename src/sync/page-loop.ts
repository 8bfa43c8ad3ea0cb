/**
 * The page loop every scan goes through, a run's or a slice's: each page is mapped (before its
 * transaction opens, so that the transaction holds its connection and row locks only for the writes), then
 * committed in one transaction with the scan's checkpoint, then the abort signal is looked at: a run stops
 * only at a page boundary, with everything before it committed.
 */
import type { Db, Tx } from '../db/client.ts';
import { AbortedError } from '../errors.ts';
import type { Clock, RunCounters, ScanPage, StreamDefinition, VoucherRow } from '../types.ts';
import { commitPage, mapPage, type CommitContext } from './commit-page.ts';
import { prefetched } from './prefetch.ts';

/** A committed page, as the loop's callbacks see it. */
export interface CommittedPage {
  page: ScanPage;
  /** The rows written (rejects excluded). */
  rows: VoucherRow[];
  /** The counters the page's writes were added to. */
  counted: RunCounters;
  /** The engine's clock when the page was mapped. */
  now: Date;
}

export interface PageLoopOptions<Client> {
  stream: StreamDefinition<Client>;
  pages: AsyncIterable<ScanPage>;
  db: Db;
  clock: Clock;
  signal?: AbortSignal;
  commit: CommitContext;
  /** The counters this page's writes are added to (a run's totals, or a slice's counts since its last page). */
  countersFor(): RunCounters;
  /** Saves where the scan stands, in the page's transaction. */
  checkpoint(tx: Tx, page: CommittedPage): Promise<void>;
  /** Called once the page has committed. */
  committed?(page: CommittedPage): Promise<void>;
}

export async function commitPages<Client>(options: PageLoopOptions<Client>): Promise<void> {
  const { stream, db, clock, signal } = options;
  // The next page is fetched while this one is written (see prefetch.ts).
  for await (const page of prefetched(options.pages)) {
    const counted = options.countersFor();
    const now = clock.now();
    const mapped = mapPage(stream, page.records, now);
    const committed = await db.$transaction(async (tx) => {
      const { rows } = await commitPage(tx, stream, mapped, counted, options.commit);
      const done = { page, rows, counted, now };
      await options.checkpoint(tx, done);
      return done;
    });
    await options.committed?.(committed);
    if (signal?.aborted) throw stopped(signal);
  }
}

/** Why a run stops at a page boundary: the signal's own reason (a lost source lock), or a shutdown. */
export function stopped(signal: AbortSignal): AbortedError {
  return signal.reason instanceof AbortedError
    ? signal.reason
    : new AbortedError('stopped after committing the current page');
}
