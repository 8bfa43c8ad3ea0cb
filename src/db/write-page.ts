import type { RejectedRow, VoucherRow } from '../types.ts';
import { checkVoucherRow } from './check-voucher-row.ts';
import { queryLarge, type Db } from './client.ts';

export interface WritePageInput {
  source: string;
  stream: string;
  runId: bigint;
  rows: VoucherRow[];
  rejects: RejectedRow[];
  /** When given, every key of the page is recorded in scan_seen for this scan. Default: none. */
  scanId?: bigint;
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
 * Writes one page of mapped rows: one statement for all vouchers (and their scan_seen keys), one for
 * all rejects. Pass a transaction client to commit the page together with the scan's checkpoint.
 */
export async function writePage(db: Db, input: WritePageInput): Promise<WritePageResult> {
  const { valid, json, rejects } = checkRows(input.rows, input.rejects);
  const runId = input.runId.toString();
  let inserted = 0;
  let updated = 0;
  if (valid.length > 0) {
    const scanId = input.scanId === undefined ? null : input.scanId.toString();
    const [counts] = await queryLarge<{ inserted: number; updated: number }>(db, UPSERT_VOUCHERS, [json, input.source, runId, scanId]);
    inserted = counts?.inserted ?? 0;
    updated = counts?.updated ?? 0;
  }
  if (rejects.length > 0) {
    await queryLarge(db, UPSERT_REJECTS, [serializeRejects(rejects), input.source, input.stream, runId]);
  }
  return { inserted, updated, unchanged: valid.length - inserted - updated, rejected: rejects.length };
}

/**
 * The rows the table can hold, as one JSON array, and the others set aside with their reasons. The page is
 * serialized in one piece; only a page holding an escaped NUL somewhere (rare) is serialized row by row to
 * find the rows that hold one.
 */
function checkRows(rows: VoucherRow[], given: RejectedRow[]): { valid: VoucherRow[]; json: string; rejects: RejectedRow[] } {
  const rejects = [...given];
  /** The rows that pass checkVoucherRow against `textOf(row)`; the others go to `rejects`. */
  const keep = (candidates: VoucherRow[], textOf: (row: VoucherRow) => string) =>
    candidates.filter((row) => {
      const problem = checkVoucherRow(row, textOf(row));
      if (problem !== null) rejects.push({ sourceId: typeof row.sourceId === 'string' ? row.sourceId : null, reason: problem, raw: row.raw });
      return problem === null;
    });
  // Every check but the NUL one, which an empty text passes.
  let valid = keep(rows, () => '');
  let json = JSON.stringify(valid);
  if (json.includes('\\u0000')) {
    valid = keep(valid, (row) => JSON.stringify(row));
    json = JSON.stringify(valid);
  }
  return { valid, json, rejects };
}

// A reject's payload is whatever the API sent; NUL characters, which jsonb refuses, are replaced so that
// the record can still be kept aside.
function serializeRejects(rejects: RejectedRow[]): string {
  return JSON.stringify(
    rejects.map((r) => ({ sourceId: r.sourceId, reason: r.reason, raw: r.raw ?? null })),
    (_key, value: unknown) => (typeof value === 'string' ? value.replaceAll('\u0000', '\uFFFD') : value),
  );
}

// $1 page rows as a JSON array, $2 source, $3 run id, $4 scan id or null.
// - jsonb_to_recordset reads the whole page in one call (a few per cent faster than one jsonb_to_record per
//   element); WITH ORDINALITY numbers the rows in page order.
// - DISTINCT ON keeps one row per key (a key twice in one page would make ON CONFLICT fail): the newest
//   source_modified_at, then the later in the page.
// - content_hash is computed here from jsonb's canonical text (sorted keys, normalized spacing), so that
//   the same record re-sent with its keys in another order is still "unchanged".
// - The WHERE of DO UPDATE skips rows whose content and deletion did not change (no dead tuple, no
//   last_synced_at bump) and rows older than what is stored; Cin7 has no modification time, so when
//   either side lacks one the fresh read wins.
// - Inserting in key order makes concurrent writers lock rows in the same order (no deadlock).
// - (xmax = 0) is true only for a freshly inserted row.
const UPSERT_VOUCHERS = `
WITH page AS (
  SELECT DISTINCT ON (r."sourceId")
         r."sourceId", r.code, r."customerId", r.status, r.amount, r."redeemedAmount", r."validFrom", r."validTo",
         r."appliedAt", r."sourceCreatedAt", r."sourceModifiedAt", r."isDeleted", COALESCE(r.raw, 'null') AS raw,
         sha256(convert_to(COALESCE(r.raw, 'null')::text, 'UTF8')) AS content_hash
    FROM ROWS FROM (jsonb_to_recordset($1::jsonb) AS (
         "sourceId" text, code text, "customerId" text, status text, amount numeric, "redeemedAmount" numeric,
         "validFrom" timestamptz, "validTo" timestamptz, "appliedAt" timestamptz, "sourceCreatedAt" timestamptz,
         "sourceModifiedAt" timestamptz, "isDeleted" boolean, raw jsonb)) WITH ORDINALITY AS r(
         "sourceId", code, "customerId", status, amount, "redeemedAmount", "validFrom", "validTo", "appliedAt",
         "sourceCreatedAt", "sourceModifiedAt", "isDeleted", raw, i)
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
         first_seen_at, last_synced_at, last_run_id)
  SELECT $2, p."sourceId", p.code, p."customerId", p.status, p.amount, p."redeemedAmount", p."validFrom",
         p."validTo", p."appliedAt", p."sourceCreatedAt", p."sourceModifiedAt", p."isDeleted",
         CASE WHEN p."isDeleted" THEN now() END, p.raw, p.content_hash, now(), now(), $3::bigint
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
         last_run_id = EXCLUDED.last_run_id
   WHERE (v.content_hash <> EXCLUDED.content_hash OR v.is_deleted <> EXCLUDED.is_deleted)
     AND (v.source_modified_at IS NULL OR EXCLUDED.source_modified_at IS NULL
          OR EXCLUDED.source_modified_at >= v.source_modified_at)
  RETURNING (xmax = 0) AS inserted
)
SELECT (count(*) FILTER (WHERE inserted))::int AS inserted,
       (count(*) FILTER (WHERE NOT inserted))::int AS updated
  FROM written`;

// $1 rejects as a JSON array, $2 source, $3 stream, $4 run id. One row per distinct payload: a payload
// seen again bumps times_seen (by how often it appears in this page) and takes the latest reason and run.
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
       source_id = COALESCE(EXCLUDED.source_id, t.source_id)`;
