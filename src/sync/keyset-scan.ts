/**
 * Paging by cursor value instead of position: each request asks for records whose cursor is at or after
 * the highest second read so far (`where CreatedDate >= …`, ascending). Rows deleted while we page cannot
 * pull unread rows past us, and new rows append at the end. Records sharing the boundary second are read
 * again (harmless: writes are idempotent, newer wins).
 *
 * One second can hold more records than a page (a bulk import stamps thousands with one date). Paging by
 * value cannot get past it, so inside that second (a "group") we page by page number, bounded to the
 * second (`>= s AND < s+1`) so that later rows cannot move into it. Page numbers are what value paging
 * avoids: a row of the group that vanishes from a page already read shifts an unread one onto that page,
 * and the source documents no id, no modification date and no order among equal dates (it may even differ
 * between requests), so nothing tells us which row we skipped. And once we move past the second, no
 * incremental scan comes back to it: a skipped row would wait for the daily reconciliation. So when the
 * group ends we read it again from its first page, and again, until a whole pass brings no key the group
 * had not already shown — or until `maxPasses`, when we report the second and move on, leaving the rest to
 * reconciliation rather than spending the request budget without end on a second that keeps changing.
 *
 * The keys seen in the group are part of the progress saved after every page, so a run that stops inside
 * a group resumes it where it stood instead of taking a half-read pass for a complete one.
 *
 * A large scan can be cut into windows [from, before) that different workers read (planWindows). Their
 * bounds are whole seconds, so a group always lies inside one window and is settled by one reader.
 *
 * Nothing the server sends is taken on trust: a record outside the range a request asked for means the
 * server ignores the filter (a scan would otherwise read the whole account again and again), and stops the
 * scan at once; a ProgressGuard stops a scan whose pages bring nothing new; a pass over a group may have
 * no more pages than the group's keys fill, plus GROUP_PAGE_SLACK (a server that ignores `page` would
 * otherwise make it endless). An answer too large to hold makes the scan ask for half the rows: a request
 * by value just asks again, while a group, paged by number, starts its pass again from page 1 with the
 * new size (page numbers of another size would skip records). The size is kept in the progress.
 */
import { FatalSourceError } from '../errors.ts';
import type { Json } from '../types.ts';
import { ProgressGuard } from './progress-guard.ts';
import { smallerPageSize } from './smaller-pages.ts';

/** Paging by page number inside the second `from` of the progress. */
export type KeysetGroup = {
  /** 1 for the first reading of the second; later passes look for rows the earlier ones missed. */
  pass: number;
  /** Next page to read within the second (1-based). */
  page: number;
  /** Keys of the records read in this second so far, over all passes. */
  seen: string[];
  /** How many of `seen` the current pass added. */
  added: number;
  /** The page size the page numbers count in. */
  rows: number;
};

export type KeysetProgress = {
  /** Cursor value (UTC ISO, whole seconds) the next request starts from; null = from the beginning. */
  from: string | null;
  /** Set while the second `from` is read by page number (it holds more records than a page). */
  group: KeysetGroup | null;
  /** The page size this scan fell back to after an answer too large to hold; absent = the configured one. */
  rows?: number;
};

/** One request: records with cursor in [from, before) (null = unbounded), ascending, page `page` of `rows`. */
export interface KeysetRequest {
  from: string | null;
  before: string | null;
  page: number;
  rows: number;
}

export interface KeysetScanOptions {
  fetch(request: KeysetRequest): Promise<unknown[]>;
  rows: number;
  /** The record's cursor as epoch ms, or null when it cannot be read. */
  cursorOf(record: unknown): number | null;
  /** The record's natural key, or undefined when it has none (it is then not counted in a group). */
  keyOf(record: unknown): string | undefined;
  start: KeysetProgress;
  /** Exclusive upper bound (UTC ISO, whole seconds) for a scan of one window; null = to the end. @default null */
  before?: string | null;
  /**
   * End only on a short page that brings nothing past the second already read (one more request per scan):
   * a short page may be a server's mistake, and a full scan that stops early leaves the rest unread. @default false
   */
  confirmEnd?: boolean;
  /** Readings of a group before it is left unsettled. @default 4 */
  maxPasses?: number;
  /** Told about a second whose last allowed pass still found keys the earlier passes had not. */
  onUnsettled?(second: string, passes: number): void;
  /** The source as named in errors. @default 'the server' */
  server?: string;
  /** The request parameter that carries the range, as named in errors. @default 'where' */
  filter?: string;
}

/** Pages a pass over a group may have beyond those its known keys fill. */
export const GROUP_PAGE_SLACK = 2;

/** One scan's mutable state besides its progress: the page size in use and the guard. */
interface Scan {
  options: KeysetScanOptions;
  rows: number;
  guard: ProgressGuard;
}

/** Thrown by a request inside a group when the page size dropped: the pass starts again from page 1. */
class Resized extends Error {}

/** Before any dated record: where a scan from the beginning goes on when a whole page has no readable date. */
const FIRST_SECOND = '1753-01-01T00:00:00Z';

export async function* keysetScan(
  options: KeysetScanOptions,
): AsyncGenerator<{ records: unknown[]; progress: KeysetProgress }> {
  const { before = null, keyOf } = options;
  const rows = Math.max(1, Math.min(options.rows, options.start.rows ?? Infinity));
  const scan: Scan = {
    options,
    rows,
    guard: new ProgressGuard({ server: options.server ?? 'the server', parameter: 'page', step: rows }),
  };
  let { from, group } = options.start;
  // A group saved with pages of another size is read again from its first page (numbers would not match).
  if (group !== null && group.rows !== rows) group = { ...group, page: 1, rows };
  // The group's keys live in a set while we page; the progress carries them as a list.
  let seen = new Set(group?.seen ?? []);
  const progress = (): KeysetProgress => {
    const saved: KeysetProgress = { from, group: group && { ...group, seen: [...seen] } };
    if (scan.rows < options.rows) saved.rows = scan.rows;
    return saved;
  };
  for (;;) {
    if (group !== null && from !== null) {
      const range = { from, before: earlier(nextSecond(from), before) };
      let records: unknown[];
      try {
        records = await groupPage(scan, range, group, seen.size);
      } catch (error) {
        if (!(error instanceof Resized)) throw error;
        group = { ...group, page: 1, rows: scan.rows };
        continue;
      }
      const added = addKeys(seen, records, keyOf);
      scan.guard.page(keysOf(records, keyOf), `page ${group.page} of ${range.from}`, { reread: group.pass > 1 });
      group = { ...group, page: group.page + 1, added: group.added + added };
      if (records.length < scan.rows) group = afterPass(group, from, options);
      if (group === null) {
        from = nextSecond(from);
        seen = new Set();
      }
      yield { records, progress: progress() };
      continue;
    }
    const { records, rows: asked } = await valuePage(scan, from, before);
    scan.guard.page(keysOf(records, keyOf), `records from ${from ?? 'the beginning'}`);
    const highest = highestSecond(records, options.cursorOf);
    const moved = highest !== null && (from === null || highest > from);
    if (moved) from = highest;
    else if (from === null) from = FIRST_SECOND;
    else if (records.length === asked) {
      // A full page inside one second: that second is a group, and this page was its first.
      seen = new Set();
      group = { pass: 1, page: 2, seen: [], added: addKeys(seen, records, keyOf), rows: asked };
    }
    yield { records, progress: progress() };
    if (records.length < asked && !(options.confirmEnd && moved)) return;
  }
}

/** Page 1 of the records from `from` on, asking again with fewer rows while the answer is too large. */
async function valuePage(
  scan: Scan,
  from: string | null,
  before: string | null,
): Promise<{ records: unknown[]; rows: number }> {
  for (;;) {
    const request = { from, before, page: 1, rows: scan.rows };
    scan.guard.request(`records from ${from ?? 'the beginning'}`);
    try {
      return { records: checkRange(scan, request, await scan.options.fetch(request)), rows: request.rows };
    } catch (error) {
      scan.rows = smallerPageSize(
        error,
        request.rows,
        `${scan.options.server ?? 'the server'} from ${from ?? 'the beginning'}`,
      );
    }
  }
}

/** One page of a group's pass; bounded by the keys the group has shown, so that a server ignoring `page` cannot keep it going. */
async function groupPage(
  scan: Scan,
  range: { from: string; before: string },
  group: KeysetGroup,
  known: number,
): Promise<unknown[]> {
  const server = scan.options.server ?? 'the server';
  if (group.page > Math.ceil(known / scan.rows) + GROUP_PAGE_SLACK) {
    throw new FatalSourceError(
      `${server} kept sending full pages for the second ${range.from} up to page ${group.page}, though it has shown only ${known} records there ` +
        `(${scan.rows} a page): it seems to ignore \`page\`; stopping rather than paging without end`,
    );
  }
  const request = { ...range, page: group.page, rows: scan.rows };
  scan.guard.request(`page ${group.page} of ${range.from}`, { reread: group.pass > 1 });
  try {
    return checkRange(scan, request, await scan.options.fetch(request));
  } catch (error) {
    scan.rows = smallerPageSize(error, request.rows, `${server} at page ${group.page} of ${range.from}`);
    throw new Resized();
  }
}

/**
 * How far outside the range asked for a record may lie before the filter counts as ignored. Cin7 documents no
 * zone for the dates in `where`: a server reading our UTC bounds in its own zone (New Zealand, up to 14 hours
 * off) shifts every range alike, which loses nothing, and must not stop every run. A server that ignores the
 * filter within those hours answers the same records again and again, which the progress guard stops.
 */
const ZONE_SLACK_MS = 14 * 3_600_000;

/**
 * The records, once every readable cursor lies in the range asked for (give or take ZONE_SLACK_MS). One outside it means the server
 * ignores the filter: paging on would read the same records again and again, so the scan stops at once.
 */
function checkRange(scan: Scan, request: KeysetRequest, records: unknown[]): unknown[] {
  const low = request.from === null ? -Infinity : Date.parse(request.from) - ZONE_SLACK_MS;
  const high = request.before === null ? Infinity : Date.parse(request.before) + ZONE_SLACK_MS;
  for (const record of records) {
    const position = scan.options.cursorOf(record);
    if (position === null || (position >= low && position < high)) continue;
    const range = [
      request.from === null ? null : `>= ${request.from}`,
      request.before === null ? null : `< ${request.before}`,
    ]
      .filter(Boolean)
      .join(' and ');
    throw new FatalSourceError(
      `${scan.options.server ?? 'the server'} answered a request for records ${range} with one at ${new Date(position).toISOString()}: ` +
        `it seems to ignore \`${scan.options.filter ?? 'where'}\`; stopping before the scan reads the same records again and again`,
    );
  }
  return records;
}

function keysOf(records: unknown[], keyOf: (record: unknown) => string | undefined): (string | undefined)[] {
  return records.map(keyOf);
}

/** Adds the records' keys to `seen`; returns how many were new. */
function addKeys(seen: Set<string>, records: unknown[], keyOf: (record: unknown) => string | undefined): number {
  const before = seen.size;
  for (const record of records) {
    const key = keyOf(record);
    if (key !== undefined) seen.add(key);
  }
  return seen.size - before;
}

/** At the end of a pass: the group is settled (null) or read again from its first page. */
function afterPass(group: KeysetGroup, second: string, options: KeysetScanOptions): KeysetGroup | null {
  if (group.pass >= 2 && group.added === 0) return null;
  if (group.pass >= (options.maxPasses ?? 4)) {
    options.onUnsettled?.(second, group.pass);
    return null;
  }
  return { ...group, pass: group.pass + 1, page: 1, seen: [], added: 0 };
}

/** Where to start or resume: saved progress, or a new scan from `from`. */
export function keysetStart(progress: Json | null, from: string | null): KeysetProgress {
  if (progress === null) return { from, group: null };
  const saved = progress as Partial<Record<string, Json>>;
  const group = typeof saved === 'object' && !Array.isArray(saved) ? saved.group : undefined;
  if (
    Array.isArray(saved) ||
    (saved.from !== null && typeof saved.from !== 'string') ||
    group === undefined ||
    typeof group !== 'object' ||
    Array.isArray(group)
  ) {
    throw new Error(`cannot resume a keyset scan from progress ${JSON.stringify(progress).slice(0, 200)}`);
  }
  return saved as KeysetProgress;
}

/** A part of a keyset scan: the records with cursor in [from, before); null = unbounded on that side. */
export interface KeysetWindow {
  from: string | null;
  before: string | null;
  [key: string]: Json;
}

/** Windows beyond which a plan stops probing (each costs a request): the last, open-ended window takes the rest. */
const MAX_WINDOWS = 1000;

/**
 * Splits a keyset scan into windows of about `size` records each, or null when there are no more than
 * two windows' worth. `probe(n)` is the cursor (epoch ms) of the n-th record in ascending order (1-based):
 * null when that record's cursor cannot be read, undefined past the end. Bounds are whole seconds, so
 * that no second (however many records share it) is split between two windows; the first window is open
 * below and the last open above, so records created after the plan are still read.
 */
export async function planWindows(
  probe: (ordinal: number) => Promise<number | null | undefined>,
  size: number,
): Promise<KeysetWindow[] | null> {
  // Whether there are more than two windows' worth costs one request: a small account pays no more.
  const third = await probe(2 * size + 1);
  if (third === undefined) return null;
  const bounds: string[] = [];
  for (let n = 1; n < MAX_WINDOWS; n++) {
    const position = n === 2 ? third : await probe(n * size + 1);
    if (position === undefined) break;
    if (position === null) continue;
    const second = toSecond(Math.floor(position / 1000) * 1000);
    if (bounds.length === 0 || second > bounds.at(-1)!) bounds.push(second);
  }
  if (bounds.length === 0) return null;
  return [null, ...bounds].map((from, i) => ({ from, before: bounds[i] ?? null }));
}

function highestSecond(records: unknown[], cursorOf: (record: unknown) => number | null): string | null {
  let highest: number | null = null;
  for (const record of records) {
    const position = cursorOf(record);
    if (position !== null && (highest === null || position > highest)) highest = position;
  }
  // Whole seconds: the server may keep more precision than we can state, and `>=` must include them.
  return highest === null ? null : toSecond(Math.floor(highest / 1000) * 1000);
}

const toSecond = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');
const nextSecond = (second: string) => toSecond(Date.parse(second) + 1000);
const earlier = (a: string, b: string | null) => (b !== null && Date.parse(b) < Date.parse(a) ? b : a);
