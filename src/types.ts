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
 * - **backfill (range)**: a `backfill` run re-reads the records whose cursor lies in a range `[from, to)` — CareCloud
 *   `last_change`, Cin7 `CreatedDate` — in slices like a full scan, and moves no watermark nor marks anything deleted
 *   (src/sync/backfill-range.ts). A *first backfill* is something else: the first scan of a stream, with no watermark.
 * - **budget / reserve / bulk share**: a source's daily budget is the requests it may make in any rolling 24 hours
 *   (Cin7: 5,000). Its *incremental reserve* is kept for incremental runs; every other request (a reconciliation,
 *   a backfill, a side run) takes the *bulk share*, the rest. A bulk scan the budget refuses is put back and resumes
 *   as the window frees requests; the *budget plan* says what pending scans need and when they should be done
 *   (src/sync/budget-plan.ts).
 * - **main run / side run**: a source's main run is one of its incremental, full or backfill runs (one at a time,
 *   under the source's lock). A side run goes beside it under a lock of its own and moves no watermark: a
 *   **customer run** (`sync --customer`) re-reads some customers' vouchers and marks deleted, once confirmed, those
 *   no longer listed; a **replay** (`rejected replay`) reads rejected records again by id or code and validates them
 *   again.
 * - **rejection / resolution**: a rejected record (`rejected_records`) is open until it is *resolved*: `replayed`
 *   (a replay read it again and it passed), `superseded` (any run stored a later valid version of it) or `gone` (a
 *   replay found it no longer at the source). It is kept, with when and by which run.
 * - **pause / cancel**: how an operator steers a source (src/db/source-control.ts, kept in Postgres): a *paused*
 *   source's scheduled runs are *skipped* (completed at once, no ledger row); a *cancelled* run stops after its page,
 *   ends `cancelled` and is not retried, and the next run resumes its scan (docs/design.md, "Pausing and cancelling").
 * - **progress**: where an unfinished scan stands (its paginator's offset or cursor, anchors, group),
 *   saved with every committed page. A record's *cursor* is its cursor field's value (epoch ms while paging):
 *   the code does not say "sort value" or "position" for it.
 * - **page**: one request's records, committed in one transaction with the scan's progress.
 * - **page size found / probe**: a stream whose server documents no largest page (CareCloud `count`) finds it at run
 *   time: a request asking for a size not yet known to be accepted is a *probe*; what is learnt, the largest page
 *   accepted and the smallest refused, is kept in `sync_state` for every run (src/sync/page-size.ts).
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
import type { BudgetShare } from './sync/budget-plan.ts';
import type { PageSizeRefusedError } from './errors.ts';
import type { Logger } from './logger.ts';

/** The modes schedulers and `sync --mode` run. */
export type ScheduledMode = 'incremental' | 'full';
export const SYNC_MODES: readonly ScheduledMode[] = ['incremental', 'full'];

/** The modes of a source's main run (one at a time per source): a scheduled mode, or a backfill of a range. */
export type SyncMode = ScheduledMode | 'backfill';

/** The range a backfill re-reads: records whose cursor lies in [from, to). */
export interface BackfillRange {
  from: Date;
  to: Date;
}

/**
 * Modes of the runs that go *beside* a source's main run, under a lock of their own (see src/db/source-lock.ts): they
 * move no watermark and no saved progress, never abandon a main run nor are abandoned by one, and say nothing of the
 * source's freshness or health (status, alerts). `customer`: a **customer run** re-reads some customers' vouchers
 * (src/sync/customer-sync.ts); `replay`: rejected records read again by id or code (src/sync/replay.ts).
 */
export type SideMode = 'customer' | 'replay';
export const SIDE_MODES: readonly SideMode[] = ['customer', 'replay'];

/** Every mode a ledger row (`sync_runs.mode`) can have. */
export type RunMode = SyncMode | SideMode;

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
  // Fields promoted from raw for reporting (columns of their own): absent or null for a source that has none.
  /** Cin7 `Type`. */
  voucherType?: string | null;
  /** Cin7 `Description`. */
  description?: string | null;
  /** CareCloud `store_id`. */
  storeId?: string | null;
  /** CareCloud `reward.reward_id`. */
  rewardId?: string | null;
  /** CareCloud `reward.name`. */
  rewardName?: string | null;
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

/**
 * The page size of a scan whose server documents no maximum (CareCloud `count`), found at run time and remembered in
 * `sync_state` (src/sync/page-size.ts): what to ask for, and where to say what the server made of it.
 */
export interface PageSizing {
  /** Records to ask for in the next request: the largest not known to be refused. */
  next(): number;
  /** True once the largest size accepted is known: requests no longer probe. */
  readonly settled: boolean;
  /** The server answered a request for `size` records. */
  accepted(size: number): Promise<void>;
  /** The server refused the size `error` names; throws a FatalSourceError when no size is left (1 refused). */
  refused(error: PageSizeRefusedError): Promise<void>;
}

/** Passed to every client call: cancellation, and counting of requests and 429s for the ledger. */
export interface CallContext {
  signal?: AbortSignal;
  observer?: RequestObserver;
  /** Whose share of the daily budget its requests take (default `bulk`: not the incremental reserve). */
  share?: BudgetShare;
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
  /** The range of a `backfill` run; absent in other modes. */
  range?: BackfillRange;
  call: CallContext;
  /** Bound to the run (or slice): for what a stream has to report while it pages. */
  logger: Logger;
  /** Given when the stream declares `pageSizing`: the page size found so far, to ask for and to learn. */
  pageSizing?: PageSizing;
}

/** What a customer's scan is given: no watermark, no progress (a customer run reads the whole list, and saves none). */
export type CustomerScanContext<Client> = Pick<
  ScanContext<Client>,
  'client' | 'now' | 'call' | 'logger' | 'pageSizing'
>;

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
  /**
   * Optional: the stream's page size is found at run time, up to `ceiling` (CARECLOUD_PAGE_SIZE=auto). Every scan,
   * plan, slice and customer scan is then given a `pageSizing` (src/sync/page-size.ts); `parameter` names the request
   * parameter for logs and errors.
   */
  pageSizing?: { ceiling: number; parameter: string };
  /** Pure: validates one raw record and normalizes it, or says why it is rejected. */
  map(raw: unknown): MapResult;
  /** The pages to read for this mode, resuming from `progress` when given. */
  scan(context: ScanContext<Client>): AsyncIterable<ScanPage>;
  /**
   * Optional: splits a full scan (or a first backfill) into independent slices that any worker can read,
   * so throughput grows with workers. Returns null when the scan is too small to be worth splitting. A backfill of a
   * range (`context.range`) is always planned here: at least one slice (none when the range is empty), never null.
   */
  planSlices?(context: ScanContext<Client>): Promise<Json[] | null>;
  /**
   * Optional: how many records the range holds (the whole list without one), as the source can tell cheaply —
   * CareCloud by its `total_items` and a binary search by offset. Without it (Cin7 tells no total), the dry runs of
   * `backfill` and `reset` count the rows we hold (src/status/estimate-work.ts).
   */
  countRecords?(client: Client, range: BackfillRange | null, call: CallContext): Promise<number | null>;
  /** Reads one slice planned by planSlices, resuming from `context.progress`. */
  scanSlice?(context: ScanContext<Client>, slice: Json): AsyncIterable<ScanPage>;
  /**
   * Re-reads records that a full scan did not see, to confirm their absence before they are marked
   * deleted: returns the raw records still there. Keys it does not return are gone.
   */
  lookup?(client: Client, keys: string[], call: CallContext): Promise<unknown[]>;
  /**
   * Optional, for a customer run (`sync --customer`, src/sync/customer-sync.ts): the pages of one customer's records,
   * read to the end with the paging rules of the stream's own scans. A customer the source does not know ends it
   * with a FatalSourceError of status 404.
   */
  scanCustomer?(context: CustomerScanContext<Client>, customerId: string): AsyncIterable<ScanPage>;
  /**
   * Optional, for `rejected replay`: how a rejected record (its stored key, and its payload as received) is found
   * again at the source — by its id or its code — or null when it has neither and cannot be read again.
   */
  identify?(rejected: { sourceId: string | null; raw: unknown }): RecordIdentity | null;
  /** Reads one record again by what `identify` named: the raw record, or null when the source no longer has it. */
  refetch?(client: Client, identity: RecordIdentity, call: CallContext): Promise<unknown>;
}

/** What names one record at its source for reading it again (`rejected replay`): its id, or its code. */
export interface RecordIdentity {
  by: 'id' | 'code';
  value: string;
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
  /** True when its streams implement `scanCustomer` (and `lookup`): `sync --customer` accepts the source. */
  customerRuns?: boolean;
}
