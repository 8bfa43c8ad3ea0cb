/**
 * A page size found at run time (CARECLOUD_PAGE_SIZE=auto). CareCloud documents no maximum for `count` and answers
 * a 400 naming it above its own; every request counts against the rate limit, so the largest page it accepts is
 * worth finding once and remembering. What is known is two bounds: the largest page accepted and the smallest
 * refused, kept in `sync_state` (src/db/page-size.ts) for every worker, process and later run.
 *
 * A request asks for the largest page not known to be refused: the ceiling while nothing is; after a refusal, the
 * maximum the refusal's message names, if any (one request more confirms it: that size plus one is refused), else
 * the middle of the bounds. An accepted probe is a page the scan uses, so only refusals cost a request: at most
 * about log2(ceiling), once. A scan takes the next size after every answer (offset-scan.ts), and a plan of slices
 * settles it before it cuts slices (settlePageSize), so that slices, read at once by many workers, do not each probe.
 * The why and the costs: docs/design.md, "Page size found at run time".
 */
import { FatalSourceError, PageSizeRefusedError } from '../errors.ts';
import type { Db } from '../db/client.ts';
import { readPageSize, recordPageSizeAccepted, recordPageSizeRefused } from '../db/page-size.ts';
import type { Logger } from '../logger.ts';
import { systemClock, type Clock, type PageSizing, type StreamDefinition } from '../types.ts';

/** What is known of the largest page the source accepts; null: nothing yet. */
export interface PageSizeBounds {
  accepted: number | null;
  refused: number | null;
}

/** The sizes still possible: above `lower` (accepted, or 0) and below `upper` (refused, or past the ceiling). */
function interval(bounds: PageSizeBounds, ceiling: number): { lower: number; upper: number } {
  const upper = Math.min(bounds.refused ?? ceiling + 1, ceiling + 1);
  return { lower: Math.min(bounds.accepted ?? 0, upper - 1), upper };
}

/** True when the largest size accepted is known: the ceiling was accepted, or the size above the accepted refused. */
export function isSettled(bounds: PageSizeBounds, ceiling: number): boolean {
  const { lower, upper } = interval(bounds, ceiling);
  return lower >= 1 && lower + 1 >= upper;
}

/**
 * The page size to ask for next, or 0 when none is left (even 1 refused). `hint`: a maximum the last refusal's
 * message named, tried first and then confirmed by asking for one more.
 */
export function nextPageSize(bounds: PageSizeBounds, ceiling: number, hint?: number): number {
  const { lower, upper } = interval(bounds, ceiling);
  if (upper <= 1) return 0;
  if (lower + 1 >= upper) return lower;
  if (bounds.refused === null || bounds.refused > ceiling) return ceiling;
  if (hint !== undefined && hint > lower && hint < upper) return hint;
  if (hint !== undefined && hint === lower) return lower + 1;
  return Math.floor((lower + upper) / 2);
}

/** After `size` was accepted: a refusal at or below it no longer holds (the source raised its maximum). */
export function afterAccepted(bounds: PageSizeBounds, size: number): PageSizeBounds {
  return {
    accepted: Math.max(bounds.accepted ?? 0, size),
    refused: bounds.refused !== null && bounds.refused <= size ? null : bounds.refused,
  };
}

/** After `size` was refused: an acceptance at or above it no longer holds (the source lowered its maximum). */
export function afterRefused(bounds: PageSizeBounds, size: number): PageSizeBounds {
  return {
    accepted: bounds.accepted !== null && bounds.accepted >= size ? null : bounds.accepted,
    refused: Math.min(bounds.refused ?? size, size),
  };
}

const same = (a: PageSizeBounds, b: PageSizeBounds) => a.accepted === b.accepted && a.refused === b.refused;

export interface PageSizingOptions {
  /** The source as named in logs and errors. */
  source: string;
  /** The page-size parameter, as named in logs and errors (CareCloud `count`). */
  parameter: string;
  ceiling: number;
  bounds: PageSizeBounds;
  /** The maximum the last refusal named, as kept (see nextPageSize). */
  hint?: number | null;
  /** Keeps a bound that moved (and a refusal's hint), for every worker and later run. */
  remember(change: { accepted: number } | { refused: number; hint: number | null }): Promise<void>;
  logger: Logger;
}

/** The bounds of one run or slice, as it learns them: read once when it starts, written through when they move. */
export function createPageSizing(options: PageSizingOptions): PageSizing {
  const { source, parameter, ceiling, logger } = options;
  let bounds = options.bounds;
  let hint = options.hint ?? undefined;
  const settled = () => isSettled(bounds, ceiling);
  const sayIfSettled = () => {
    if (!settled()) return;
    const size = nextPageSize(bounds, ceiling);
    const why = size === ceiling ? `the most voucher-sync asks for` : `${size + 1} refused`;
    logger.info(
      { pageSize: size, pageSizeRefused: bounds.refused },
      `page size found: ${source} accepts ${size} records a request (${why})`,
    );
  };
  return {
    // At least 1: a source that refused even that is asked for 1 again (it may accept it now, and end the refusal).
    next: () => Math.max(1, nextPageSize(bounds, ceiling, hint)),
    get settled() {
      return settled();
    },
    async accepted(size) {
      const moved = afterAccepted(bounds, size);
      if (same(moved, bounds)) return;
      const wasSettled = settled();
      bounds = moved;
      await options.remember({ accepted: size });
      if (!wasSettled) sayIfSettled();
    },
    async refused(error: PageSizeRefusedError) {
      bounds = afterRefused(bounds, error.size);
      hint = error.hint;
      await options.remember({ refused: error.size, hint: error.hint ?? null });
      const next = nextPageSize(bounds, ceiling, hint);
      if (next === 0) {
        throw new FatalSourceError(
          `${source} refuses even a page of 1 record: its 400 names \`${parameter}\` whatever the size (${error.message})`,
          400,
          { cause: error },
        );
      }
      logger.info(
        { refused: error.size, next, hint },
        `${source} refuses pages of ${error.size} records (\`${parameter}\`); asking for ${next}`,
      );
      sayIfSettled();
    },
  };
}

/**
 * The PageSizing of a run, slice or customer run of `stream`, from what `sync_state` holds now; undefined when the
 * stream's page size is configured, not found.
 */
export async function openPageSizing<Client>(
  db: Db,
  input: { source: string; stream: StreamDefinition<Client>; logger: Logger; clock?: Clock },
): Promise<PageSizing | undefined> {
  const found = input.stream.pageSizing;
  if (!found) return undefined;
  const { source, stream, clock = systemClock } = input;
  const stored = await readPageSize(db, source, stream.name);
  return createPageSizing({
    source,
    parameter: found.parameter,
    ceiling: found.ceiling,
    bounds: { accepted: stored.accepted, refused: stored.refused },
    hint: stored.hint,
    logger: input.logger,
    remember: (change) =>
      'accepted' in change
        ? recordPageSizeAccepted(db, source, stream.name, change.accepted, clock.now())
        : recordPageSizeRefused(db, source, stream.name, { size: change.refused, hint: change.hint }, clock.now()),
  });
}

/**
 * Records a request of `stream` reads, by what `sync_state` holds now, for estimates that turn records into requests:
 * with a size found at run time, the largest accepted (before any is, the size the next request tries); else
 * `configured`.
 */
export async function pageSizeInUse<Client>(
  db: Db,
  input: { source: string; stream: StreamDefinition<Client>; configured: number | undefined },
): Promise<number | undefined> {
  const found = input.stream.pageSizing;
  if (!found) return input.configured;
  const stored = await readPageSize(db, input.source, input.stream.name);
  return Math.min(found.ceiling, stored.accepted ?? Math.max(1, nextPageSize(stored, found.ceiling)));
}

/**
 * Sends `send(size)` with the sizes `sizing` gives until the largest accepted is known, and returns the last answer
 * (of the size found). For the request a plan makes anyway (its total): its answer's records are not used, so an
 * accepted probe costs a request here too — once, before slices are cut to the size found.
 */
export async function settlePageSize<T>(sizing: PageSizing, send: (size: number) => Promise<T>): Promise<T> {
  // A refusal can settle the size (the one above the last accepted refused): that answer is then the one to return.
  let last: { size: number; answer: T } | undefined;
  for (;;) {
    const size = sizing.next();
    if (sizing.settled && last?.size === size) return last.answer;
    let answer: T;
    try {
      answer = await send(size);
    } catch (error) {
      if (!(error instanceof PageSizeRefusedError)) throw error;
      await sizing.refused(error);
      continue;
    }
    await sizing.accepted(size);
    if (sizing.settled) return answer;
    last = { size, answer };
  }
}
