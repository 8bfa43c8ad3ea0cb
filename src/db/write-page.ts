import type { RejectedRow, VoucherRow } from '../types.ts';
import { requireSource } from '../sources/index.ts';
import { checkVoucherRow } from './check-voucher-row.ts';
import { largeQueries, type Db, type LargeQueries, type Tx } from './client.ts';
import { findUnstorable, storableCopy, storableText, SUSPECT_ESCAPE, tryStringify } from './unstorable.ts';

export interface WritePageInput {
  source: string;
  stream: string;
  runId: bigint;
  rows: VoucherRow[];
  rejects: RejectedRow[];
  /**
   * When given, every key of the page is recorded in scan_seen for this scan, and a stored row this scan has
   * not seen yet takes what the page holds even when its source_modified_at is older (see UPSERT_VOUCHERS).
   * Default: none.
   */
  scanId?: bigint;
  /**
   * A stored source_modified_at later than this is not trusted: any read replaces it, older or not. Default:
   * none (newer wins whatever is stored).
   */
  implausibleAfter?: Date;
}

/** What the page did to the table. inserted + updated + unchanged + rejected = rows + rejects. */
export interface WritePageResult {
  inserted: number;
  updated: number;
  /** Rows already stored as they are, older than what is stored, or superseded by a newer duplicate in the page. */
  unchanged: number;
  rejected: number;
}

/**
 * Writes one page of mapped rows: one statement for all vouchers (and their scan_seen keys, and the open
 * rejections of their keys that the page supersedes), one for all rejects. Pass a transaction client to commit
 * the page together with the scan's checkpoint.
 *
 * A row PostgreSQL refuses for what it holds (a data error: see isDataError) does not fail the page: the
 * statement is retried on halves of the page, each inside a savepoint, down to the rows it refuses, which
 * are rejected with PostgreSQL's message. On a page without such a row that costs one savepoint.
 */
export async function writePage(db: Db | Tx, input: WritePageInput): Promise<WritePageResult> {
  requireSource(input.source); // the registry is the list of sources: the table has no CHECK of its own
  const { valid, json, rejects } = checkRows(input.rows, input.rejects);
  const query = await largeQueries(db);
  const runId = input.runId.toString();
  const scanId = input.scanId === undefined ? null : input.scanId.toString();
  const implausibleAfter = input.implausibleAfter?.toISOString() ?? null;
  const upsert = (rows: VoucherRow[], text: string) =>
    guarded(
      query,
      () =>
        query<{ inserted: number; updated: number }>(UPSERT_VOUCHERS, [
          text,
          input.source,
          runId,
          scanId,
          implausibleAfter,
          input.stream,
        ]),
      rows.length < valid.length,
    );
  const written = valid.length > 0 ? await bisect(valid, json, upsert) : { inserted: 0, updated: 0, refused: [] };
  for (const { row, reason } of written.refused) rejects.push({ sourceId: row.sourceId, reason, raw: row.raw });
  if (rejects.length > 0) await storeRejects(query, rejects, [input.source, input.stream, runId]);
  const stored = valid.length - written.refused.length;
  return {
    inserted: written.inserted,
    updated: written.updated,
    unchanged: stored - written.inserted - written.updated,
    rejected: rejects.length,
  };
}

/**
 * The rows the table can hold, as one JSON array, and the others set aside with their reasons. The page is
 * serialized in one piece; only a page that JSON.stringify cannot write, or whose text holds an escape that
 * may be a NUL or a lone surrogate (rare), is looked at row by row.
 */
function checkRows(
  rows: VoucherRow[],
  given: RejectedRow[],
): { valid: VoucherRow[]; json: string; rejects: RejectedRow[] } {
  const rejects = [...given];
  /** The rows for which `problemOf` finds nothing; the others go to `rejects`. */
  const keep = (candidates: VoucherRow[], problemOf: (row: VoucherRow) => string | null) =>
    candidates.filter((row) => {
      const problem = problemOf(row);
      if (problem !== null)
        rejects.push({
          sourceId: typeof row.sourceId === 'string' ? row.sourceId : null,
          reason: problem,
          raw: row.raw,
        });
      return problem === null;
    });
  let valid = keep(rows, checkVoucherRow);
  let json = tryStringify(valid);
  if (json === null || SUSPECT_ESCAPE.test(json)) {
    valid = keep(valid, unstorableProblem);
    json = JSON.stringify(valid);
  }
  return { valid, json, rejects };
}

/** Why one row cannot be written as JSON PostgreSQL accepts, or null. */
function unstorableProblem(row: VoucherRow): string | null {
  const text = tryStringify(row);
  // JSON.stringify recurses: it fails on a few thousand levels of nesting, whatever the stack left.
  if (text === null)
    return (
      findUnstorable(row.raw, 'raw', 1000) ?? findUnstorable(row.raw, 'raw') ?? 'the record cannot be written as JSON'
    );
  return SUSPECT_ESCAPE.test(text) ? findUnstorable(row, 'row') : null;
}

interface Bisected {
  inserted: number;
  updated: number;
  /** Rows PostgreSQL refused, with its reason. */
  refused: { row: VoucherRow; reason: string }[];
}

/** Writes `rows` (serialized as `json`), narrowing a data error down to the rows that cause it. */
async function bisect(
  rows: VoucherRow[],
  json: string,
  upsert: (rows: VoucherRow[], json: string) => Promise<{ inserted: number; updated: number }[]>,
): Promise<Bisected> {
  try {
    const [counts] = await upsert(rows, json);
    return { inserted: counts?.inserted ?? 0, updated: counts?.updated ?? 0, refused: [] };
  } catch (error) {
    if (!isDataError(error)) throw error;
    if (rows.length === 1)
      return {
        inserted: 0,
        updated: 0,
        refused: [{ row: rows[0]!, reason: `PostgreSQL refused the record: ${describeError(error)}` }],
      };
    const middle = rows.length >>> 1;
    const halves = [rows.slice(0, middle), rows.slice(middle)];
    const results: Bisected[] = [];
    for (const half of halves) results.push(await bisect(half, JSON.stringify(half), upsert));
    return results.reduce((a, b) => ({
      inserted: a.inserted + b.inserted,
      updated: a.updated + b.updated,
      refused: [...a.refused, ...b.refused],
    }));
  }
}

/**
 * Runs `statement` so that a data error leaves the caller's transaction usable: inside a savepoint, rolled
 * back to on that error. Outside a transaction a statement that fails changes nothing: no savepoint needed.
 * A savepoint that succeeded is left for the commit to release (one round trip less per page); a page makes
 * two at most unless it bisects, which releases each of its own, so a transaction stays far below the 64
 * subtransactions PostgreSQL caches per session.
 */
async function guarded<T>(query: LargeQueries, statement: () => Promise<T>, release = false): Promise<T> {
  if (!query.inTransaction) return statement();
  await query('SAVEPOINT write_page', []);
  try {
    const result = await statement();
    if (release) await query('RELEASE SAVEPOINT write_page', []);
    return result;
  } catch (error) {
    if (isDataError(error)) {
      await query('ROLLBACK TO SAVEPOINT write_page', []);
      await query('RELEASE SAVEPOINT write_page', []);
    }
    throw error;
  }
}

/**
 * A statement refused for the values it was given, which another part of the page would not share: SQLSTATE
 * class 22 (data exception: invalid json, text, number or date) or 54 (program limit: too deep, too long).
 * Connection, lock and server errors are not: the page must fail and be retried. Nor are constraint
 * violations: the columns they guard (source, status) are set by our code, and a mistake there must stop the
 * run, not reject every record.
 */
export function isDataError(error: unknown): boolean {
  const code = sqlState(error);
  return code !== undefined && (code.startsWith('22') || code.startsWith('54'));
}

function sqlState(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const { code, meta } = error as { code?: unknown; meta?: { code?: unknown } };
  // pg errors carry the SQLSTATE as `code`; Prisma's raw-query errors (P2010) as meta.code.
  if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && !code.startsWith('P')) return code;
  return typeof meta?.code === 'string' ? meta.code : undefined;
}

function describeError(error: unknown): string {
  const { message, detail } = error as { message?: unknown; detail?: unknown };
  const text = typeof message === 'string' ? message : String(error);
  return storableText(typeof detail === 'string' && detail !== '' ? `${text} (${detail})` : text).slice(0, 500);
}

/**
 * Stores rejected records. A reject's payload is whatever the API sent, so it is stored as a rendering
 * PostgreSQL always accepts (storableCopy: NUL and lone surrogates replaced, nesting cut at KEPT_DEPTH);
 * should the statement still be refused, the payloads are stored as text.
 */
async function storeRejects(query: LargeQueries, rejects: RejectedRow[], params: string[]): Promise<void> {
  const payload = (raw: (r: RejectedRow) => unknown) =>
    JSON.stringify(
      rejects.map((r) => ({
        sourceId: r.sourceId === null ? null : storableText(r.sourceId),
        reason: storableText(r.reason),
        raw: raw(r),
      })),
    );
  try {
    await guarded(query, () => query(UPSERT_REJECTS, [payload((r) => storableCopy(r.raw ?? null)), ...params]));
  } catch (error) {
    if (!isDataError(error)) throw error;
    await query(UPSERT_REJECTS, [
      payload((r) => (tryStringify(storableCopy(r.raw ?? null)) ?? '').slice(0, 100_000)),
      ...params,
    ]);
  }
}

// $1 page rows as a JSON array, $2 source, $3 run id, $4 scan id or null, $5 the time after which a stored
// source_modified_at is implausible, or null, $6 stream.
// - jsonb_to_recordset reads the whole page in one call (a few per cent faster than one jsonb_to_record per
//   element); WITH ORDINALITY numbers the rows in page order.
// - DISTINCT ON keeps one row per key (a key twice in one page would make ON CONFLICT fail): the newest
//   source_modified_at, then the later in the page.
// - content_hash is computed here from jsonb's canonical text (sorted keys, normalized spacing), so that
//   the same record re-sent with its keys in another order is still "unchanged".
// - The WHERE of DO UPDATE skips rows whose content and deletion did not change (no dead tuple, no
//   last_synced_at bump) and rows older than what is stored; Cin7 has no modification time, so when
//   either side lacks one the fresh read wins. Newer-wins protects a scan that reads a voucher twice (old
//   copy, then new, as pages or slices commit in any order), so it holds only among the reads of one scan:
//   a full scan's first read of a voucher (its key not yet in scan_seen — the statement's snapshot does not
//   see the keys the `seen` CTE adds) replaces what any earlier run stored, so that one wrong stored time
//   (a last_change in 2099, a wrong CARECLOUD_TIMEZONE) cannot block a voucher for good. A stored time
//   later than $5 is not trusted by any run.
// - Inserting in key order makes concurrent writers lock rows in the same order (no deadlock).
// - (xmax = 0) is true only for a freshly inserted row.
// - A deleted row's status is 'deleted' whatever the record said (vouchers_deleted_status_check): BI filters on
//   status, through its index, rather than on a CASE of is_deleted.
// - The promoted columns (voucher_type ... reward_name) follow raw: a record whose content did not change keeps them.
// - A new row is its own first version (the history: migration 20261204000200): it starts at the source's
//   last_change when that is not in the future, else now. An update's next version is dated by the trigger
//   vouchers_next_version, which every writer of the table goes through.
// - `resolved`: a valid version of a key that the table now holds — written by this page, or stored already with
//   the same content — supersedes the key's open rejections (resolution 'superseded', by this run). An older copy
//   that newer-wins skipped resolves nothing. `candidates` probes the rejections' index once per key of the page
//   (OFFSET 0 keeps each probe a parameterized index scan, whatever the planner guesses of a page's size) and
//   usually finds none; only a key it finds is then checked against `written` and the stored row.
const UPSERT_VOUCHERS = `
WITH page AS (
  SELECT DISTINCT ON (r."sourceId")
         r."sourceId", r.code, r."customerId", r.status, r.amount, r."redeemedAmount", r."validFrom", r."validTo",
         r."appliedAt", r."sourceCreatedAt", r."sourceModifiedAt", r."isDeleted", COALESCE(r.raw, 'null') AS raw,
         sha256(convert_to(COALESCE(r.raw, 'null')::text, 'UTF8')) AS content_hash,
         r."voucherType", r.description, r."storeId", r."rewardId", r."rewardName"
    FROM ROWS FROM (jsonb_to_recordset($1::jsonb) AS (
         "sourceId" text, code text, "customerId" text, status text, amount numeric, "redeemedAmount" numeric,
         "validFrom" timestamptz, "validTo" timestamptz, "appliedAt" timestamptz, "sourceCreatedAt" timestamptz,
         "sourceModifiedAt" timestamptz, "isDeleted" boolean, raw jsonb, "voucherType" text, description text,
         "storeId" text, "rewardId" text, "rewardName" text)) WITH ORDINALITY AS r(
         "sourceId", code, "customerId", status, amount, "redeemedAmount", "validFrom", "validTo", "appliedAt",
         "sourceCreatedAt", "sourceModifiedAt", "isDeleted", raw, "voucherType", description, "storeId", "rewardId",
         "rewardName", i)
   ORDER BY r."sourceId", r."sourceModifiedAt" DESC NULLS LAST, r.i DESC
),
seen AS (
  INSERT INTO scan_seen (scan_id, source_id)
  SELECT $4::bigint, p."sourceId" FROM page p WHERE $4::bigint IS NOT NULL
  ON CONFLICT DO NOTHING
),
written AS (
  INSERT INTO vouchers AS v (source, source_id, code, customer_id, status, amount, redeemed_amount, valid_from,
         valid_to, applied_at, source_created_at, source_modified_at, is_deleted, deleted_at, raw, content_hash,
         first_seen_at, last_synced_at, last_run_id, voucher_type, description, store_id, reward_id, reward_name,
         version_from, version_from_basis, version_run_id)
  SELECT $2, p."sourceId", p.code, p."customerId", CASE WHEN p."isDeleted" THEN 'deleted' ELSE p.status END,
         p.amount, p."redeemedAmount", p."validFrom", p."validTo", p."appliedAt", p."sourceCreatedAt",
         p."sourceModifiedAt", p."isDeleted", CASE WHEN p."isDeleted" THEN now() END, p.raw, p.content_hash, now(),
         now(), $3::bigint, p."voucherType", p.description, p."storeId", p."rewardId", p."rewardName",
         CASE WHEN p."sourceModifiedAt" <= now() THEN p."sourceModifiedAt" ELSE now() END,
         CASE WHEN p."sourceModifiedAt" <= now() THEN 'source' ELSE 'observed' END, $3::bigint
    FROM page p
   ORDER BY p."sourceId"
  ON CONFLICT (source, source_id) DO UPDATE SET
         code = EXCLUDED.code,
         customer_id = EXCLUDED.customer_id,
         status = EXCLUDED.status,
         amount = EXCLUDED.amount,
         redeemed_amount = EXCLUDED.redeemed_amount,
         valid_from = EXCLUDED.valid_from,
         valid_to = EXCLUDED.valid_to,
         applied_at = EXCLUDED.applied_at,
         source_created_at = EXCLUDED.source_created_at,
         source_modified_at = EXCLUDED.source_modified_at,
         is_deleted = EXCLUDED.is_deleted,
         deleted_at = CASE WHEN EXCLUDED.is_deleted THEN COALESCE(v.deleted_at, EXCLUDED.deleted_at) END,
         raw = EXCLUDED.raw,
         content_hash = EXCLUDED.content_hash,
         last_synced_at = EXCLUDED.last_synced_at,
         last_run_id = EXCLUDED.last_run_id,
         voucher_type = EXCLUDED.voucher_type,
         description = EXCLUDED.description,
         store_id = EXCLUDED.store_id,
         reward_id = EXCLUDED.reward_id,
         reward_name = EXCLUDED.reward_name
   WHERE (v.content_hash <> EXCLUDED.content_hash OR v.is_deleted <> EXCLUDED.is_deleted)
     AND (v.source_modified_at IS NULL OR EXCLUDED.source_modified_at IS NULL
          OR EXCLUDED.source_modified_at >= v.source_modified_at
          OR v.source_modified_at > $5::timestamptz
          OR ($4::bigint IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM scan_seen s WHERE s.scan_id = $4::bigint AND s.source_id = v.source_id)))
  RETURNING v.source_id, (xmax = 0) AS inserted
),
candidates AS (
  SELECT t.id, p."sourceId", p.content_hash, p."isDeleted"
    FROM page p
   CROSS JOIN LATERAL (SELECT r.id FROM rejected_records r
                        WHERE r.source = $2 AND r.stream = $6 AND r.source_id = p."sourceId" AND r.resolved_at IS NULL
                       OFFSET 0) t
),
resolved AS (
  UPDATE rejected_records t SET resolved_at = now(), resolved_by_run_id = $3::bigint, resolution = 'superseded'
    FROM candidates c
   CROSS JOIN LATERAL (SELECT EXISTS (SELECT 1 FROM written w WHERE w.source_id = c."sourceId")
                              OR EXISTS (SELECT 1 FROM vouchers o WHERE o.source = $2 AND o.source_id = c."sourceId"
                                            AND o.content_hash = c.content_hash AND o.is_deleted = c."isDeleted") AS yes
                       OFFSET 0) s
   WHERE t.id = c.id AND s.yes
)
SELECT (count(*) FILTER (WHERE inserted))::int AS inserted,
       (count(*) FILTER (WHERE NOT inserted))::int AS updated
  FROM written`;

// $1 rejects as a JSON array, $2 source, $3 stream, $4 run id. One row per distinct payload: a payload
// seen again bumps times_seen (by how often it appears in this page), takes the latest reason and run, and is open
// again if it had been resolved (the source sends it again as it was).
const UPSERT_REJECTS = `
INSERT INTO rejected_records AS t (source, stream, source_id, reason, raw, raw_hash, run_id, times_seen,
       first_rejected_at, last_rejected_at)
SELECT $2, $3, left(g."sourceId", 255), g.reason, g.raw, g.raw_hash, $4::bigint, g.n, now(), now()
  FROM (SELECT DISTINCT ON (h.raw_hash) r."sourceId", r.reason, h.raw, h.raw_hash,
               (count(*) OVER (PARTITION BY h.raw_hash))::int AS n
          FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS e(doc, i)
         CROSS JOIN LATERAL jsonb_to_record(e.doc) AS r("sourceId" text, reason text, raw jsonb)
         CROSS JOIN LATERAL (SELECT COALESCE(r.raw, 'null'::jsonb) AS raw,
                                    sha256(convert_to(COALESCE(r.raw, 'null'::jsonb)::text, 'UTF8')) AS raw_hash) h
         ORDER BY h.raw_hash, e.i DESC) g
 ORDER BY g.raw_hash
ON CONFLICT (source, stream, raw_hash) DO UPDATE SET
       times_seen = t.times_seen + EXCLUDED.times_seen,
       last_rejected_at = EXCLUDED.last_rejected_at,
       run_id = EXCLUDED.run_id,
       reason = EXCLUDED.reason,
       source_id = COALESCE(EXCLUDED.source_id, t.source_id),
       resolved_at = NULL,
       resolved_by_run_id = NULL,
       resolution = NULL`;
