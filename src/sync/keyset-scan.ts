/**
 * Paging by cursor value instead of position: each request asks for records whose cursor is at or after
 * the highest second read so far (`where CreatedDate >= …`, ascending). Rows deleted while we page cannot
 * pull unread rows past us, and new rows append at the end. Records sharing the boundary second are read
 * again (harmless: writes are idempotent, newer wins).
 *
 * One second can hold more records than a page (a bulk import stamps thousands with one date). Paging by
 * value cannot get past it, so from that second on (a "group") we page by position: `>= s` (and the
 * window's bound) by page number, the last page of a pass reading on past the second, so that the group
 * costs no page cut short (a short page that brought records new to the pass does not end it either: the
 * server may have cut it short, and the next page, starting on its last records, tells). Positions are what
 * value paging avoids: a row of the group that vanishes from a page already read shifts an unread one onto
 * that page, and the source documents no id, no modification date and no order among equal dates (it may
 * even differ between requests). So each page of a pass starts GROUP_OVERLAP records before the last one
 * ended (the API has only `page` and `rows`: overlappingPage finds the page number and size that start
 * there and reach furthest) and must find there the latest of the last records read (its anchors), with no
 * record after it that this pass read before. Such a page goes on exactly where the last one stopped: with
 * a stable order, rows that vanished before it moved the anchor earlier, within the overlap, and the unread
 * rows they pulled back are on the page; with an order that changes between requests but rows that do not,
 * a pass that covers every position and never brings a record twice has brought every record once. A page
 * that finds none of its anchors, and nothing it read before, comes after rows vanished before it, more
 * than the overlap: the next page starts STEP_BACK times further back (while a page can still reach past
 * where the pass stood), and the one that finds them goes on. A page that still does not (anchors pushed
 * later by rows added before them, a record read twice, or too far to step back) leaves the pass in doubt,
 * and the group is read again from its first record, until a pass has no doubt or a later pass finds no key
 * the earlier ones had not — or until `maxPasses`, when we report the second and move on, leaving the rest
 * to reconciliation rather than spending the request budget without end on a second that keeps changing. A
 * quiet group thus costs a few records a page, not a second pass; churn costs what moved: nothing for fewer
 * rows than the overlap, a request or two for more, a pass only beyond what stepping back finds. Pages too
 * small to overlap and still gain half a page (a few rows) are read whole, in doubt, as before anchors:
 * twice. What a pass cannot see is a row added before its place while another is removed there between the
 * same two pages: only a voucher created with a past CreatedDate can be added there, which an incremental
 * scan would not read again anyway; the next reconciliation reads it.
 *
 * Once the scan moves past the second, no incremental scan comes back to it: a skipped row would wait for
 * the daily reconciliation. The group's pass, position, anchors and keys are part of the progress saved
 * after every page, so a run that stops inside a group resumes it where it stood, checking its anchors as
 * for any page (a group saved by an older version, with no anchors, is read again).
 *
 * A large scan can be cut into windows [from, before) that different workers read (planWindows). Their
 * bounds are whole seconds, so a group always lies inside one window and is settled by one reader.
 *
 * Nothing the server sends is taken on trust: a record outside the range a request asked for means the
 * server ignores the filter (a scan would otherwise read the whole account again and again), and stops the
 * scan at once; a ProgressGuard stops a scan whose pages bring nothing new; a pass over a group may not
 * reach further than the keys it has shown plus GROUP_PAGE_SLACK pages (a server that ignores `page` would
 * otherwise make it endless). An answer too large to hold makes the scan ask for half the rows: by value
 * or by position, it just asks again from where it stood. The size is kept in the progress.
 */
import { FatalSourceError } from '../errors.ts';
import type { Json } from '../types.ts';
import { ProgressGuard } from './progress-guard.ts';
import { smallerPageSize } from './smaller-pages.ts';

/** Paging by position from the first record of the second `from` of the progress. */
export type KeysetGroup = {
  /** 1 for the first reading of the second; a later pass reads it again when the one before was in doubt. */
  pass: number;
  /** Records this pass has covered from the second's first on, in the order the server pages them. */
  read: number;
  /** Keys of the last records this pass read, oldest first: the next page must start on them. */
  anchors: string[];
  /** Keys of the records read in this second so far, over all passes. */
  seen: string[];
  /** How many of `seen` the current pass added. */
  added: number;
  /** Keys this pass read, when it is not the first (the first pass's are `seen`). */
  passSeen?: string[];
  /** A page of this pass did not start on its anchors, or brought a record twice: the pass vouches for nothing. */
  doubt: boolean;
  /** Set after a page that found none of its anchors: how far back from `read` the next page must start. */
  back?: number;
};

export type KeysetProgress = {
  /** Cursor value (UTC ISO, whole seconds) the next request starts from; null = from the beginning. */
  from: string | null;
  /** Set while the second `from` is read by position (it holds more records than a page). */
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
  /** Told about a second whose last allowed pass was still in doubt. */
  onUnsettled?(second: string, passes: number): void;
  /** The source as named in errors. @default 'the server' */
  server?: string;
  /** The request parameter that carries the range, as named in errors. @default 'where' */
  filter?: string;
}

/** Pages a pass over a group may reach beyond the records its passes have shown. */
export const GROUP_PAGE_SLACK = 2;

/**
 * Records each page of a group re-reads from the end of the one before: the anchors it must start on. Rows
 * vanishing before a page, up to one fewer than this, cost nothing; more leave the pass in doubt.
 */
export const GROUP_OVERLAP = 3;

/** How much further back than the last page the next one starts after a page that found none of its anchors. */
export const STEP_BACK = 4;

/** One scan's mutable state besides its progress: the page size in use and the guard. */
interface Scan {
  options: KeysetScanOptions;
  rows: number;
  guard: ProgressGuard;
}

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
  let { from } = options.start;
  let group = resumedGroup(options.start.group);
  // Keys live in sets while we page; the progress carries them as lists.
  const keys = groupKeys(group);
  const progress = (): KeysetProgress => {
    const saved: KeysetProgress = { from, group: group && { ...group, ...keys.saved() } };
    if (scan.rows < options.rows) saved.rows = scan.rows;
    return saved;
  };
  for (;;) {
    if (group !== null && from !== null) {
      const answer = await groupPage(scan, { from, before }, group, keys.known);
      if (answer === null) continue; // the rows dropped: the same position is asked for again, with fewer
      const { records, asked } = answer;
      const read = readGroupPage(scan, from, group, keys, answer);
      group = read.group;
      // A page that steps back ends nothing. A short page that brought records may have been cut short by the server:
      // the next page tells.
      if (!read.back && (read.past || (records.length < asked && read.fresh === 0))) {
        group = afterPass(group, from, options);
        if (group === null) from = read.past ? highestSecond(records, options.cursorOf)! : nextSecond(from);
        keys.reset(group);
      }
      yield { records, progress: progress() };
      if (group === null && records.length < asked && !(options.confirmEnd && read.past)) return;
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
      const first = definedKeys(records, keyOf);
      group = { pass: 1, read: records.length, anchors: first.slice(-GROUP_OVERLAP), seen: [], added: 0, doubt: false };
      keys.reset(group);
      group.added = keys.add(first);
    }
    yield { records, progress: progress() };
    if (records.length < asked && !(options.confirmEnd && moved)) return;
  }
}

/**
 * The keys of a group: of all its passes (`seen`) and of the pass under way (`passSeen`, the same set in
 * the first pass), as sets while the scan pages and as lists in its progress.
 */
function groupKeys(group: KeysetGroup | null) {
  let seen = new Set(group?.seen ?? []);
  let pass = group && group.pass > 1 ? new Set(group.passSeen ?? []) : seen;
  return {
    /** Whether this pass has read the key. */
    read: (key: string) => pass.has(key),
    /** Adds the keys of this pass's page; returns how many no pass had read. */
    add(keys: string[]): number {
      const before = seen.size;
      for (const key of keys) {
        seen.add(key);
        pass.add(key);
      }
      return seen.size - before;
    },
    get known() {
      return seen.size;
    },
    /** A new pass (empty pass keys), or no group (no keys at all). */
    reset(next: KeysetGroup | null) {
      if (next === null) seen = new Set();
      pass = next !== null && next.pass > 1 ? new Set() : seen;
    },
    saved: () => ({ seen: [...seen], ...(pass === seen ? {} : { passSeen: [...pass] }) }),
  };
}
type GroupKeys = ReturnType<typeof groupKeys>;

/**
 * A group as saved, or as an older version saved it (page numbers of one size, no anchors): its position is
 * kept, but with no anchors to start on, that pass is in doubt.
 */
function resumedGroup(saved: KeysetProgress['group']): KeysetGroup | null {
  if (saved === null || typeof saved.read === 'number') return saved;
  const old = saved as unknown as { pass: number; page: number; rows: number; seen: string[]; added: number };
  const group = { pass: old.pass, read: (old.page - 1) * old.rows, anchors: [], seen: old.seen, added: old.added };
  return { ...group, ...(old.pass > 1 ? { passSeen: [] } : {}), doubt: true };
}

/**
 * A group page as read: the group after it, whether it reached past the second, how many of its keys were
 * new to the pass, and whether the next page steps back to find the anchors this one lacked.
 */
function readGroupPage(
  scan: Scan,
  second: string,
  group: KeysetGroup,
  keys: GroupKeys,
  { records, start }: { records: unknown[]; start: number },
): { group: KeysetGroup; past: boolean; fresh: number; back: boolean } {
  const { cursorOf, keyOf } = scan.options;
  const end = Date.parse(nextSecond(second));
  const inSecond = records.filter((record) => (cursorOf(record) ?? -Infinity) < end);
  scan.guard.page(keysOf(records, keyOf), `page from record ${start + 1} of ${second}`, { reread: group.pass > 1 });
  const overlap = group.read - start;
  const found = group.read === 0 ? 'continues' : onAnchors(group.anchors, keysOf(inSecond, keyOf), overlap, keys);
  const back = found === 'behind' && !group.doubt ? widerOverlap(group.read, overlap, scan.rows) : null;
  // Rows vanished before this page, more than it overlapped: the next page starts further back, and this
  // one (stored all the same) counts for nothing in the pass.
  if (back !== null) return { group: { ...group, back }, past: false, fresh: 0, back: true };
  const page = definedKeys(inSecond, keyOf);
  const fresh = page.filter((key) => !keys.read(key)).length;
  const { back: _stepped, ...rest } = group;
  return {
    group: {
      ...rest,
      read: start + records.length,
      anchors: [...group.anchors, ...page].slice(-GROUP_OVERLAP),
      added: group.added + keys.add(page),
      doubt: group.doubt || found !== 'continues',
    },
    past: inSecond.length < records.length,
    fresh,
    back: false,
  };
}

/**
 * Whether a page asked to start `overlap` records before the end of the last one reads on from it: the
 * latest anchor still on the page lies within the overlap (rows that vanished before it move it earlier;
 * rows that appeared before it push it later, and those are not on the page), and nothing after it was
 * read before in this pass (which an order changing between requests would show) — or, when no anchor is
 * on the page and nothing on it was read before, rows vanished before it, more than the overlap (`behind`).
 */
function onAnchors(
  anchors: string[],
  page: (string | undefined)[],
  overlap: number,
  keys: GroupKeys,
): 'continues' | 'behind' | 'doubt' {
  const unread = (key: string | undefined) => key === undefined || !keys.read(key);
  for (let a = anchors.length - 1; a >= 0; a--) {
    const at = page.indexOf(anchors[a]);
    if (at === -1) continue;
    return at < overlap && page.slice(at + 1).every(unread) ? 'continues' : 'doubt';
  }
  return anchors.length > 0 && page.length > 0 && page.every(unread) ? 'behind' : 'doubt';
}

/**
 * How far back the page after one that found none of its anchors starts: STEP_BACK times as far, while a
 * page of `maxRows` can still reach past `read` from there; null beyond (the pass is then in doubt).
 */
function widerOverlap(read: number, overlap: number, maxRows: number): number | null {
  const wider = Math.max(GROUP_OVERLAP, overlap) * STEP_BACK;
  return wider < maxRows && overlappingPage(read, wider, maxRows, 1) !== null ? wider : null;
}

/**
 * The page number and size (at most `maxRows`) of the page that starts at least `overlap` records before
 * the position `read` and reaches furthest past it (with only `page` and `rows`, a page starts at a
 * multiple of its size); null when no such page reaches `minGain` records past it (by default half a page:
 * with pages of a few rows, overlapping would cost more than reading the group again).
 */
export function overlappingPage(
  read: number,
  overlap: number,
  maxRows: number,
  minGain = Math.ceil(maxRows / 2),
): { page: number; rows: number } | null {
  const latestStart = read - overlap;
  if (latestStart < 0) return null;
  let best = { page: 0, rows: 0, end: read + minGain - 1 };
  for (let rows = maxRows; rows >= 1 && latestStart + rows > best.end; rows--) {
    const page = Math.floor(latestStart / rows) + 1;
    if (page * rows > best.end) best = { page, rows, end: page * rows };
  }
  return best.page > 0 ? { page: best.page, rows: best.rows } : null;
}

/**
 * The next page of a pass: overlapping the last by GROUP_OVERLAP records (or by `back`, after a page that
 * found no anchor), unless it is the pass's first, or the pass is in doubt (it is read again anyway), or no
 * such page gains half a page; then the page that reaches furthest from where the pass stands.
 */
function nextGroupPage(group: KeysetGroup, maxRows: number): { page: number; rows: number } {
  if (group.back !== undefined) return overlappingPage(group.read, group.back, maxRows, 1)!;
  const anchored = group.read > 0 && !group.doubt ? overlappingPage(group.read, GROUP_OVERLAP, maxRows) : null;
  return anchored ?? overlappingPage(group.read, 0, maxRows, 1)!;
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

/**
 * The next page of a group's pass, starting GROUP_OVERLAP records before where the pass stands; null when
 * the answer was too large (the rows are then halved, and the same position asked for again). A pass may
 * not reach further than the records its passes have shown plus GROUP_PAGE_SLACK pages, so that a server
 * ignoring `page` cannot keep it going.
 */
async function groupPage(
  scan: Scan,
  range: { from: string; before: string | null },
  group: KeysetGroup,
  known: number,
): Promise<{ records: unknown[]; start: number; asked: number } | null> {
  const server = scan.options.server ?? 'the server';
  if (group.read > known + GROUP_PAGE_SLACK * scan.rows) {
    throw new FatalSourceError(
      `${server} kept sending full pages for the second ${range.from} up to record ${group.read}, though it has shown only ${known} records there ` +
        `(${scan.rows} a page): it seems to ignore \`page\`; stopping rather than paging without end`,
    );
  }
  const { page, rows } = nextGroupPage(group, scan.rows);
  const request = { ...range, page, rows };
  const start = (page - 1) * rows;
  scan.guard.request(`page from record ${start + 1} of ${range.from}`, { reread: group.pass > 1 });
  try {
    return { records: checkRange(scan, request, await scan.options.fetch(request)), start, asked: rows };
  } catch (error) {
    scan.rows = smallerPageSize(error, rows, `${server} at record ${start + 1} of ${range.from}`);
    return null;
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

/** The records' keys, leaving out records without one. */
function definedKeys(records: unknown[], keyOf: (record: unknown) => string | undefined): string[] {
  return records.map(keyOf).filter((key): key is string => key !== undefined);
}

/**
 * At the end of a pass: the group is settled (null) — by a pass without doubt, or by a later pass that found
 * no key the earlier ones had not — or read again from its first record.
 */
function afterPass(group: KeysetGroup, second: string, options: KeysetScanOptions): KeysetGroup | null {
  if (!group.doubt || (group.pass >= 2 && group.added === 0)) return null;
  if (group.pass >= (options.maxPasses ?? 4)) {
    options.onUnsettled?.(second, group.pass);
    return null;
  }
  return { pass: group.pass + 1, read: 0, anchors: [], seen: [], added: 0, passSeen: [], doubt: false };
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
