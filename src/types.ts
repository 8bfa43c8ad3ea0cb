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
 */

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
