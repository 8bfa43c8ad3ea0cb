/**
 * Proof of progress for one scan. A server that ignores the paging parameter (`offset`, `page`) answers
 * every request with records already read, and a scan that trusts it pages for ever, spending the source's
 * request allowance (Cin7's 5,000 a day is shared by every integration on the account) on nothing. So each
 * paginator hands every page it reads to a guard, which remembers the keys this scan has read and stops the
 * scan, with an error that names what the server did, when:
 *
 * - `maxStalePages` pages in a row bring no key this scan had not already read (pages re-read on purpose,
 *   such as the re-read passes of a keyset group, are told apart and do not count: they have bounds of
 *   their own); or
 * - the scan's requests (again without the deliberate re-reads) exceed what the data can need:
 *   `2 × ceil(max(expected, distinct keys read) / step) + margin`, where `expected` is what the scan was
 *   told to expect (a reported total, a slice's planned size) and `step` the new records a request can
 *   bring. A legitimate scan makes about `distinct / step` requests; twice that plus the margin leaves room
 *   for re-aligning after rows shifted, while a server that trickles one new record per page is stopped
 *   after a bounded number of requests.
 *
 * Keys are kept as 32-bit hashes in an open-addressing table (a typed array), so a million keys cost 8 MB
 * at most, under the worker's 192 MB heap. A collision can only make a new key look read; a page counts
 * as stale only when every one of its keys does, which for a page of real new keys does not happen.
 */
import { FatalSourceError } from '../errors.ts';

export interface ProgressGuardOptions {
  /** The source as named in errors, e.g. `CareCloud`. */
  server: string;
  /** The paging parameter a server that makes no progress seems to ignore, e.g. `offset`. */
  parameter: string;
  /** New records one request can bring at most (page size minus the records each request re-reads). */
  step: number;
  /** Records the scan expects to read (a reported total, a slice's planned size). @default 0 */
  expected?: number;
  /** Pages in a row with no new key before the scan stops. @default 5 */
  maxStalePages?: number;
  /** Requests allowed beyond twice what the data needs. @default 20 */
  margin?: number;
}

/** Pages in a row with no new key that end a scan, unless told otherwise. */
export const MAX_STALE_PAGES = 5;
/** Requests a scan may make beyond twice what its data needs, unless told otherwise. */
export const REQUEST_MARGIN = 20;

export class ProgressGuard {
  private readonly keys = new KeyHashSet();
  private stale: string[] = [];
  private requests = 0;
  private expected: number;
  private step: number;

  constructor(private readonly options: ProgressGuardOptions) {
    this.expected = options.expected ?? 0;
    this.step = Math.max(1, options.step);
  }

  /** Distinct keys this scan has read. */
  get distinct(): number {
    return this.keys.size;
  }

  /** Requests made that count against the bound (deliberate re-reads excluded). */
  get requestsMade(): number {
    return this.requests;
  }

  /** Raises what the scan expects (a total the server reported), and the step (a page size that changed). */
  update(change: { expected?: number | null; step?: number }): void {
    if (change.expected !== undefined && change.expected !== null && change.expected > this.expected)
      this.expected = change.expected;
    if (change.step !== undefined) this.step = Math.max(1, change.step);
  }

  /** The most requests this scan may make, as things stand. */
  get allowed(): number {
    return 2 * Math.ceil(Math.max(this.expected, this.distinct) / this.step) + (this.options.margin ?? REQUEST_MARGIN);
  }

  /** Counts a request about to be sent (`what`, e.g. `offset=95`); throws when the scan has made too many. */
  request(what: string, { reread = false } = {}): void {
    if (reread) return;
    this.requests++;
    if (this.requests <= this.allowed) return;
    throw new FatalSourceError(
      `${this.options.server}: stopped after ${this.requests - 1} requests (at ${what}) for ${this.distinct} distinct records, more than the data can need ` +
        `(twice the larger of ${this.expected} expected and ${this.distinct} read, per ${this.step} a request, plus ${this.options.margin ?? REQUEST_MARGIN}): ` +
        `the server keeps answering without bringing new records; it seems to ignore \`${this.options.parameter}\``,
    );
  }

  /**
   * Takes a page's keys (undefined for a record without one) read by the request `what`. Throws when this
   * page is the `maxStalePages`-th in a row to bring no new key; `reread` pages are not counted either way.
   */
  page(keys: Iterable<string | undefined>, what: string, { reread = false } = {}): number {
    let added = 0;
    for (const key of keys) if (key !== undefined && this.keys.add(key)) added++;
    if (reread) return added;
    if (added > 0) {
      this.stale = [];
      return added;
    }
    this.stale.push(what);
    if (this.stale.length >= (this.options.maxStalePages ?? MAX_STALE_PAGES)) {
      throw new FatalSourceError(
        `${this.options.server} returned only records this scan had already read for ${this.stale.length} pages in a row (${this.stale.join(', ')}): ` +
          `it seems to ignore \`${this.options.parameter}\`; stopping rather than paging without end`,
      );
    }
    return added;
  }

  /** The scan starts over (rows shifted past recovery): what it reads again is new to it, with a fresh bound. */
  restart(): void {
    this.keys.clear();
    this.stale = [];
    this.requests = 0;
  }
}

/** FNV-1a, 32 bits, never 0 (0 marks an empty slot). */
export function hashKey(key: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0 || 1;
}

/** A set of 32-bit key hashes: open addressing with linear probing, grown at half full. */
export class KeyHashSet {
  private table = new Uint32Array(1024);
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** Adds the key's hash; false when it was there already. */
  add(key: string): boolean {
    if ((this.count + 1) * 2 > this.table.length) this.grow();
    const added = insert(this.table, hashKey(key));
    if (added) this.count++;
    return added;
  }

  has(key: string): boolean {
    const hash = hashKey(key);
    const mask = this.table.length - 1;
    for (let i = hash & mask; this.table[i] !== 0; i = (i + 1) & mask) if (this.table[i] === hash) return true;
    return false;
  }

  clear(): void {
    this.table = new Uint32Array(1024);
    this.count = 0;
  }

  private grow(): void {
    const old = this.table;
    this.table = new Uint32Array(old.length * 2);
    for (const hash of old) if (hash !== 0) insert(this.table, hash);
  }
}

function insert(table: Uint32Array, hash: number): boolean {
  const mask = table.length - 1;
  let i = hash & mask;
  for (; table[i] !== 0; i = (i + 1) & mask) if (table[i] === hash) return false;
  table[i] = hash;
  return true;
}
