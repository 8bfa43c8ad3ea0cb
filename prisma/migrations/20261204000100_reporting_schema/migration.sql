-- The reporting schema as a product (issue #13 §3): the fields BI asks for most as columns of their own, Cin7's "no
-- customer" (0) as null, `status` a stored, indexed column, the time up to which each source's data is complete, and
-- a `reporting.vouchers` whose `raw` carries no personal data. Every view and column of `reporting` is described.

-- AlterTable
-- Promoted from raw (the mapping fills them from now on: src/sources/*/): null for the other source.
ALTER TABLE "vouchers" ADD COLUMN "voucher_type" VARCHAR(255),
ADD COLUMN "description" TEXT,
ADD COLUMN "store_id" VARCHAR(255),
ADD COLUMN "reward_id" VARCHAR(255),
ADD COLUMN "reward_name" VARCHAR(255);

-- AlterTable
-- When a stream's data was last complete: the start of the last scan that read every change (see
-- src/sync/run-sync.ts). Until such a scan completes, the start of the last full scan is all that is known.
ALTER TABLE "sync_state" ADD COLUMN "complete_as_of" TIMESTAMPTZ(3);
UPDATE "sync_state" SET "complete_as_of" = "last_full_scan_at";

-- CreateIndex
-- BI filters on source and status (vouchers_source_status_idx), valid_to, source_created_at (indexed since the
-- first migration) and the customer.
CREATE INDEX "vouchers_customer_id_idx" ON "vouchers"("customer_id");

-- Everything below is written by hand (see the first migration).

-- Fill the promoted columns of the stored rows from raw, the way the mapping reads them (labelOf in
-- src/sources/record-reader.ts): a JSON string (empty: null) or number as its text, cut to the column's 255
-- characters (description: uncut); anything else null. Cin7 records come in camelCase or PascalCase.
CREATE FUNCTION pg_temp.label(value jsonb, max integer) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE jsonb_typeof(value)
    WHEN 'string' THEN NULLIF(CASE WHEN max IS NULL THEN value #>> '{}' ELSE left(value #>> '{}', max) END, '')
    WHEN 'number' THEN left(value #>> '{}', coalesce(max, 1000))
  END
$$;

UPDATE "vouchers" SET
       "voucher_type" = pg_temp.label(CASE WHEN "raw" ? 'type' THEN "raw" -> 'type' ELSE "raw" -> 'Type' END, 255),
       "description" = pg_temp.label(CASE WHEN "raw" ? 'description' THEN "raw" -> 'description' ELSE "raw" -> 'Description' END, NULL),
       -- Cin7 sends customer 0 for a voucher that belongs to no customer.
       "customer_id" = CASE WHEN "customer_id" ~ '^-?0+$' THEN NULL ELSE "customer_id" END
 WHERE "source" = 'cin7' AND jsonb_typeof("raw") = 'object';

UPDATE "vouchers" SET
       "store_id" = pg_temp.label("raw" -> 'store_id', 255),
       "reward_id" = pg_temp.label("raw" -> 'reward' -> 'reward_id', 255),
       "reward_name" = pg_temp.label("raw" -> 'reward' -> 'name', 255)
 WHERE "source" = 'carecloud' AND jsonb_typeof("raw") = 'object';

DROP FUNCTION pg_temp.label(jsonb, integer);

-- AddCheckConstraint
-- `status` is the status BI filters on, so that the index on (source, status) serves it: a deleted voucher (at the
-- source, or vanished from it) has status 'deleted'. The writer and markVanished store it so; the view no longer
-- computes it.
UPDATE "vouchers" SET "status" = 'deleted' WHERE "is_deleted" AND "status" <> 'deleted';
ALTER TABLE "vouchers" ADD CONSTRAINT "vouchers_deleted_status_check" CHECK (NOT "is_deleted" OR "status" = 'deleted');

-- CreateFunction
CREATE FUNCTION "reporting"."without_email"(value text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT CASE WHEN position('@' IN value) = 0 THEN value
              ELSE regexp_replace(value, '[^[:space:]@<>()\[\]",;:]+@[^[:space:]@<>()\[\]",;:]+', '(e-mail removed)', 'g') END
$$;

COMMENT ON FUNCTION "reporting"."without_email"(text) IS 'The text with every e-mail address in it replaced by ''(e-mail removed)''.';

-- CreateFunction
-- Personal data never reaches the reporting schema: this removes, at any depth, every key that names an e-mail, a
-- phone or a person's name (compared lowercased, without separators: Cin7's customerEmail, CustomerEmail), and
-- replaces every e-mail address written inside a text by '(e-mail removed)'. plpgsql, as it calls itself.
CREATE FUNCTION "reporting"."without_personal_data"(document jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
  -- Most records hold neither such a key nor an '@': one look at the text spares the walk.
  IF position('@' IN document::text) = 0 AND document::text !~* '(e[^a-z0-9]*mail|phone|mobile|first[^a-z0-9]*name|last[^a-z0-9]*name|full[^a-z0-9]*name|customer[^a-z0-9]*name|birth)' THEN
    RETURN document;
  END IF;
  CASE jsonb_typeof(document)
    WHEN 'object' THEN
      RETURN coalesce(
        (SELECT jsonb_object_agg(e.key, "reporting"."without_personal_data"(e.value))
           FROM jsonb_each(document) AS e
          WHERE regexp_replace(lower(e.key), '[^a-z0-9]', '', 'g') !~ '(email|phone|mobile|firstname|lastname|fullname|customername|birth)'),
        '{}'::jsonb);
    WHEN 'array' THEN
      RETURN (SELECT coalesce(jsonb_agg("reporting"."without_personal_data"(e.value) ORDER BY e.n), '[]'::jsonb)
                FROM jsonb_array_elements(document) WITH ORDINALITY AS e(value, n));
    WHEN 'string' THEN
      RETURN to_jsonb("reporting"."without_email"(document #>> '{}'));
    ELSE
      RETURN document;
  END CASE;
END
$$;

COMMENT ON FUNCTION "reporting"."without_personal_data"(jsonb) IS 'The JSON without personal data: keys naming an e-mail, a phone or a person''s name removed at any depth, e-mail addresses inside texts replaced.';

-- CreateView
-- Replaced in place: the existing columns keep their names, types, comments and grants; the new ones come last.
CREATE OR REPLACE VIEW "reporting"."vouchers" AS
SELECT
    v."id",
    v."source",
    v."source_id",
    v."code",
    v."customer_id",
    v."status",
    v."amount",
    v."redeemed_amount",
    v."valid_from",
    v."valid_to",
    v."applied_at",
    v."source_created_at",
    v."source_modified_at",
    v."is_deleted",
    v."deleted_at",
    v."first_seen_at",
    v."last_synced_at",
    v."last_run_id",
    "reporting"."without_personal_data"(v."raw") AS "raw",
    v."voucher_type",
    "reporting"."without_email"(v."description") AS "description",
    v."store_id",
    v."reward_id",
    v."reward_name"
FROM "vouchers" AS v;

COMMENT ON VIEW "reporting"."vouchers" IS 'Vouchers of every source (CareCloud and Cin7 Omni), one row per voucher per source, kept in step by voucher-sync. Deleted vouchers stay, with status ''deleted''. Columns are a contract: added, never renamed or dropped.';
COMMENT ON COLUMN "reporting"."vouchers"."customer_id" IS 'Customer id in the source system; null when the voucher belongs to no customer (Cin7 sends 0 then).';
COMMENT ON COLUMN "reporting"."vouchers"."status" IS '''active'' (usable), ''inactive'' (used up or disabled) or ''deleted'' (deleted in, or vanished from, the source). Indexed with source: filter on it freely.';
COMMENT ON COLUMN "reporting"."vouchers"."raw" IS 'The record as the source API last returned it (JSON), fields unknown to voucher-sync included, without personal data: keys naming an e-mail, a phone or a person''s name are left out, e-mail addresses in texts replaced.';
COMMENT ON COLUMN "reporting"."vouchers"."voucher_type" IS 'Cin7 Type (e.g. ''Gift Voucher'', ''Credit Note''); null for CareCloud.';
COMMENT ON COLUMN "reporting"."vouchers"."description" IS 'Cin7 Description, e-mail addresses in it replaced; null for CareCloud.';
COMMENT ON COLUMN "reporting"."vouchers"."store_id" IS 'CareCloud store_id: the store the voucher belongs to; null for Cin7.';
COMMENT ON COLUMN "reporting"."vouchers"."reward_id" IS 'CareCloud reward.reward_id: the reward (campaign) the voucher was issued for; null for Cin7.';
COMMENT ON COLUMN "reporting"."vouchers"."reward_name" IS 'CareCloud reward.name; null for Cin7.';

-- CreateView
-- One row per source that has a stream state, a run or a pause.
CREATE VIEW "reporting"."sync_status" AS
WITH known AS (
    SELECT "source" FROM "sync_state"
    UNION SELECT "source" FROM "source_controls"
    UNION SELECT "source" FROM "sync_runs"
),
streams AS (
    -- The stalest stream speaks for its source: unknown when any stream's time is.
    SELECT "source",
           CASE WHEN bool_and("complete_as_of" IS NOT NULL) THEN min("complete_as_of") END AS "data_as_of",
           CASE WHEN bool_and("last_success_at" IS NOT NULL) THEN min("last_success_at") END AS "last_success_at"
      FROM "sync_state"
     GROUP BY "source"
)
SELECT
    k."source",
    s."data_as_of",
    s."last_success_at",
    r."status" AS "last_run_status",
    now() - s."data_as_of" AS "freshness",
    (c."paused_at" IS NOT NULL) AS "paused"
FROM known AS k
LEFT JOIN streams AS s ON s."source" = k."source"
LEFT JOIN "source_controls" AS c ON c."source" = k."source"
LEFT JOIN LATERAL (
    SELECT x."status" FROM "sync_runs" AS x WHERE x."source" = k."source" ORDER BY x."started_at" DESC, x."id" DESC LIMIT 1
) AS r ON true;

COMMENT ON VIEW "reporting"."sync_status" IS 'How current the data of each source is, one row per source: print "data as of" on a dashboard from here.';
COMMENT ON COLUMN "reporting"."sync_status"."source" IS 'System the data comes from: ''carecloud'' or ''cin7''.';
COMMENT ON COLUMN "reporting"."sync_status"."data_as_of" IS 'Time up to which the data is complete, UTC: the start of the last successful scan that reads every change — for CareCloud its last incremental run (it reads every change by last_change), for Cin7 its last reconciliation or first load (its incremental runs read only new vouchers; redemptions are seen by reconciliation). Null until such a scan succeeded.';
COMMENT ON COLUMN "reporting"."sync_status"."last_success_at" IS 'When the last successful run (incremental or reconciliation) of the source finished, UTC; null before the first.';
COMMENT ON COLUMN "reporting"."sync_status"."last_run_status" IS 'Status of the source''s latest run: ''running'', ''waiting'', ''succeeded'', ''failed'', ''cancelled'', ''interrupted'' or ''abandoned''; null before the first.';
COMMENT ON COLUMN "reporting"."sync_status"."freshness" IS 'How old the data is: the time since data_as_of, at the time of the query; null when data_as_of is.';
COMMENT ON COLUMN "reporting"."sync_status"."paused" IS 'True while an operator has paused the source (voucher-sync pause): its data ages until it is resumed.';

-- Statistics for the planner after the rewrite of every row above (and for tables never analyzed since their first
-- backfill): BI queries are planned from them.
ANALYZE "vouchers";
