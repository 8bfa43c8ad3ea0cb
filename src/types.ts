/**
 * Glossary — these words mean the same thing everywhere in the code, the logs and the README.
 *
 * - **source**: one external system we copy vouchers from (`carecloud`, `cin7`). A source has a client
 *   (HTTP + auth) and one or more streams.
 * - **stream**: one kind of record read from a source in one way (here: `vouchers`). Declared as data:
 *   how to page, which field is the cursor, what the key is, and a pure `map(raw) → row`.
 * - **cursor / watermark**: the cursor is the record field that orders changes (CareCloud `last_change`,
 *   Cin7 `CreatedDate`); the watermark is the highest cursor value a *completed* scan has committed.
 *   It never passes what was actually seen and moves only in the transaction that commits the rows.
 * - **lookback**: how far below the watermark an incremental scan starts, to catch records whose cursor
 *   was stamped before they became visible and records that share the watermark's second.
 * - **scan**: one pass over the pages of a stream. An unfinished scan keeps its progress in `sync_state`
 *   so that a later run resumes it instead of starting over.
 * - **run**: one execution of a scan by a worker, recorded in the `sync_runs` ledger. A scan interrupted by
 *   shutdown or a long rate-limit pause is finished by a later run.
 * - **reconciliation**: a `full` scan that re-reads everything, updates what changed without a timestamp
 *   (Cin7 redemptions) and marks deleted what vanished, once its absence is confirmed.
 * - **progress**: where an unfinished scan stands (its paginator's offset or cursor, anchors, group),
 *   saved with every committed page. A record's *cursor* is its cursor field's value (epoch ms while paging):
 *   the code does not say "sort value" or "position" for it.
 * - **page**: one request's records, committed in one transaction with the scan's progress.
 * - **anchor**: a record read at the end of a page (its key and cursor), looked for again by the next
 *   request to tell whether rows shifted in between (offset paging: src/sync/offset-scan.ts).
 * - **plan / slice**: a large full scan (or first backfill) is *planned* as independent *slices* that any
 *   worker can read; the run that planned them waits for them (src/sync/read-slices.ts). A CareCloud slice
 *   is a range of offsets with the anchors at its start; a Cin7 slice is a *window*.
 * - **window**: a range of cursors `[from, before)` read by value (src/sync/keyset-scan.ts).
 * - **group / pass**: one second of Cin7 `CreatedDate` holding more records than a page: read by page
 *   number, in *passes*, until a pass brings no key the earlier ones had not.
 * - **guard**: the ProgressGuard every paginator reports to; it stops a scan whose server makes no progress.
 * - **clock**: the engine's time (`Clock`, injected into runSync and runSlice): the run's start, the future
 *   tolerance, the watermark's cap and every time the engine writes to the ledger and the stream state.
 *   Row times (`first_seen_at`, `last_synced_at`, `deleted_at`) and rejected records' times are PostgreSQL's
 *   `now()`, the time of the write, like the rows' own bookkeeping.
 */
import type { HttpConfig, Schedule, SourceLimits } from './config.ts';
import type { SourceConfig } from './config-fields.ts';
import type { SourceFake } from './fake/source-fake.ts';
import type { RateLimiter } from './http/rate-limiter.ts';
import type { Logger } from './logger.ts';

export type SyncMode = 'incremental' | 'full';
export const SYNC_MODES: readonly SyncMode[] = ['incremental', 'full'];

export type VoucherStatus = 'active' | 'inactive' | 'deleted';

/** A voucher normalized for the `vouchers` table. Dates are UTC ISO strings, amounts decimal strings. */
export interface VoucherRow {
  sourceId: string;
  code: string | null;
  customerId: string | null;
  status: VoucherStatus;
  amount: string | null;
  redeemedAmount: string | null;
  validFrom: string | null;
  validTo: string | null;
  appliedAt: string | null;
  sourceCreatedAt: string | null;
  sourceModifiedAt: string | null;
  isDeleted: boolean;
  /** The record exactly as the API returned it, unknown fields included. */
  raw: unknown;
}

/** A record that failed validation: kept aside with a reason a person can act on. */
export interface RejectedRow {
  sourceId: string | null;
  reason: string;
  raw: unknown;
}

export type MapResult = { ok: true; row: VoucherRow } | { ok: false; reject: RejectedRow };

/** Counters of one run, as written to the ledger. */
export interface RunCounters {
  pages: number;
  fetched: number;
  inserted: number;
  updated: number;
  unchanged: number;
  rejected: number;
  deleted: number;
  apiCalls: number;
  rateLimited: number;
}

export const emptyCounters = (): RunCounters => ({
  pages: 0,
  fetched: 0,
  inserted: 0,
  updated: 0,
  unchanged: 0,
  rejected: 0,
  deleted: 0,
  apiCalls: 0,
  rateLimited: 0,
});

/** Adds `delta` to `counters` (in place) and returns them: the one place counters are summed. */
export function addCounters(counters: RunCounters, delta: Partial<RunCounters>): RunCounters {
  for (const key of Object.keys(delta) as (keyof RunCounters)[]) counters[key] += delta[key] ?? 0;
  return counters;
}

/** What the HTTP layer reports about each request, so the ledger can count calls and 429s. */
export interface RequestObserver {
  onRequest?(): void;
  onRateLimited?(): void;
}

/** Something that tells the time; tests hand in a frozen one. */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/** JSON that can be stored in a jsonb column (scan progress). */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

/** Passed to every client call: cancellation, and counting of requests and 429s for the ledger. */
export interface CallContext {
  signal?: AbortSignal;
  observer?: RequestObserver;
}

export interface ScanContext<Client> {
  client: Client;
  mode: SyncMode;
  /** Watermark of the last completed scan; null before the first. */
  watermark: Date | null;
  lookbackMs: number;
  /** When this run started (the engine's clock). */
  now: Date;
  /** Progress saved by the unfinished scan this run resumes; null to start a new scan. */
  progress: Json | null;
  call: CallContext;
  /** Bound to the run (or slice): for what a stream has to report while it pages. */
  logger: Logger;
}

/** One page of a scan: its raw records, and where the scan stands once the page is committed. */
export interface ScanPage {
  records: unknown[];
  progress: Json;
  /** The number of records the server said the whole list holds, when it says (CareCloud `total_items`). */
  total?: number | null;
}

export interface StreamDefinition<Client> {
  name: string;
  /** The row field that orders the stream; its highest committed value becomes the watermark. */
  cursorField: 'sourceModifiedAt' | 'sourceCreatedAt';
  /**
   * Optional: names what `map` depends on besides the record (e.g. `timezone=Europe/Prague`). When it differs
   * from what the stored rows were mapped with, they are remapped from raw (src/db/remap-rows.ts).
   */
  mappingKey?: string;
  /** Pure: validates one raw record and normalizes it, or says why it is rejected. */
  map(raw: unknown): MapResult;
  /** The pages to read for this mode, resuming from `progress` when given. */
  scan(context: ScanContext<Client>): AsyncIterable<ScanPage>;
  /**
   * Optional: splits a full scan (or a first backfill) into independent slices that any worker can read,
   * so throughput grows with workers. Returns null when the scan is too small to be worth splitting.
   */
  planSlices?(context: ScanContext<Client>): Promise<Json[] | null>;
  /** Reads one slice planned by planSlices, resuming from `context.progress`. */
  scanSlice?(context: ScanContext<Client>, slice: Json): AsyncIterable<ScanPage>;
  /**
   * Re-reads records that a full scan did not see, to confirm their absence before they are marked
   * deleted: returns the raw records still there. Keys it does not return are gone.
   */
  lookup?(client: Client, keys: string[], call: CallContext): Promise<unknown[]>;
}

/** What the engine and the job layer need to know of a configured source. */
export interface SourceSettings {
  lookbackMs: number;
  /** Deletion confirmations a full scan may spend; the rest wait for the next full scan. */
  confirmMax: number;
  limits: SourceLimits;
  schedules: { incremental: Schedule; full: Schedule };
}

export interface ClientDependencies {
  http: HttpConfig;
  limiter?: RateLimiter;
  logger: Logger;
}

/** A source: one folder under src/sources and one line in src/sources/index.ts. */
export interface SourceDefinition<Section = unknown, Client = unknown> {
  name: string;
  /** Its variables, secrets and credentials, and how its section of the config (`config.sources[name]`) is built. */
  config: SourceConfig<Section>;
  /** Its fake server, for the demo, `npm run fake` and the tests. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- each fake has its own type and options
  fake: SourceFake<any, any>;
  settings(section: Section): SourceSettings;
  createClient(section: Section, deps: ClientDependencies): Client;
  createStreams(section: Section): StreamDefinition<Client>[];
}
