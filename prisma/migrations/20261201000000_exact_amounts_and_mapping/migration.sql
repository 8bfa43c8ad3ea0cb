-- Exact amounts: numeric without a scale, so that an amount is stored with the digits the API sent
-- (numeric(18,4) rounded 33.333333333333336 to 33.3333). Existing amounts are recomputed from `raw`.
-- Also: sync_state.mapping_key, what a stream's stored rows were mapped with (e.g. `timezone=Europe/Prague`),
-- so that a change of CARECLOUD_TIMEZONE or CIN7_TIMEZONE is detected and the stored times recomputed.

-- The view depends on the columns whose type changes: it is dropped and created again, as it was, with its
-- comments. Grants to the BI role come back through the default privileges that `db:reporting-role` set.
DROP VIEW "reporting"."vouchers";

-- AlterTable
ALTER TABLE "vouchers" ALTER COLUMN "amount" SET DATA TYPE DECIMAL,
ALTER COLUMN "redeemed_amount" SET DATA TYPE DECIMAL;

-- AlterTable
ALTER TABLE "sync_state" ADD COLUMN "mapping_key" VARCHAR(255);

-- Recompute the amounts from raw, reading exactly what parseAmount (src/sources/parse.ts) accepts: a JSON
-- number as it is, or a string holding an unambiguous decimal with a dot once surrounding white space is
-- trimmed (JavaScript's String.prototype.trim set). A value that is neither keeps what is stored (such a row
-- was never written: its record would have been rejected). Cin7 records come in camelCase or PascalCase.
CREATE FUNCTION pg_temp.exact_amount(value jsonb, stored numeric) RETURNS numeric LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE
    WHEN value IS NULL OR jsonb_typeof(value) = 'null' THEN NULL
    WHEN jsonb_typeof(value) = 'number' THEN (value #>> '{}')::numeric
    WHEN jsonb_typeof(value) = 'string' AND (value #>> '{}') ~ '^[\s\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]*-?[0-9]+(\.[0-9]+)?[\s\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]*$'
      THEN substring(value #>> '{}' FROM '-?[0-9]+(?:\.[0-9]+)?')::numeric
    ELSE stored
  END
$$;

UPDATE "vouchers" SET "amount" = pg_temp.exact_amount("raw" -> 'value', "amount")
 WHERE "source" = 'carecloud' AND jsonb_typeof("raw") = 'object';

UPDATE "vouchers" SET
       "amount" = pg_temp.exact_amount(CASE WHEN "raw" ? 'amount' THEN "raw" -> 'amount' ELSE "raw" -> 'Amount' END, "amount"),
       "redeemed_amount" = pg_temp.exact_amount(CASE WHEN "raw" ? 'redeemedAmount' THEN "raw" -> 'redeemedAmount' ELSE "raw" -> 'RedeemedAmount' END, "redeemed_amount")
 WHERE "source" = 'cin7' AND jsonb_typeof("raw") = 'object';

DROP FUNCTION pg_temp.exact_amount(jsonb, numeric);

-- CreateView
CREATE VIEW "reporting"."vouchers" AS
SELECT
    v."id",
    v."source",
    v."source_id",
    v."code",
    v."customer_id",
    (CASE WHEN v."is_deleted" THEN 'deleted' ELSE v."status" END)::VARCHAR(16) AS "status",
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
    v."raw"
FROM "vouchers" AS v;

COMMENT ON VIEW "reporting"."vouchers" IS 'Vouchers of every source (CareCloud and Cin7 Omni), one row per voucher per source, kept in step by voucher-sync. Deleted vouchers stay, with status ''deleted''.';
COMMENT ON COLUMN "reporting"."vouchers"."id" IS 'Surrogate key of this row; stable for the life of the row.';
COMMENT ON COLUMN "reporting"."vouchers"."source" IS 'System the voucher comes from: ''carecloud'' or ''cin7''.';
COMMENT ON COLUMN "reporting"."vouchers"."source_id" IS 'The voucher''s id in its source (CareCloud voucher_id, Cin7 Code); unique within a source.';
COMMENT ON COLUMN "reporting"."vouchers"."code" IS 'Voucher code as shown to the customer.';
COMMENT ON COLUMN "reporting"."vouchers"."customer_id" IS 'Customer id in the source system.';
COMMENT ON COLUMN "reporting"."vouchers"."status" IS '''active'' (usable), ''inactive'' (used up or disabled) or ''deleted'' (deleted in, or vanished from, the source).';
COMMENT ON COLUMN "reporting"."vouchers"."amount" IS 'Face value of the voucher, exactly as the source sent it (the shortest decimal of the number the API''s JSON held).';
COMMENT ON COLUMN "reporting"."vouchers"."redeemed_amount" IS 'Amount already redeemed (Cin7), exactly as the source sent it; null when the source does not report it.';
COMMENT ON COLUMN "reporting"."vouchers"."valid_from" IS 'Start of validity, UTC.';
COMMENT ON COLUMN "reporting"."vouchers"."valid_to" IS 'End of validity (expiry), UTC.';
COMMENT ON COLUMN "reporting"."vouchers"."applied_at" IS 'When the voucher was applied (redeemed), UTC; null if not applied.';
COMMENT ON COLUMN "reporting"."vouchers"."source_created_at" IS 'When the source created the voucher, UTC.';
COMMENT ON COLUMN "reporting"."vouchers"."source_modified_at" IS 'When the source last changed the voucher, UTC; null for Cin7, which does not report it.';
COMMENT ON COLUMN "reporting"."vouchers"."is_deleted" IS 'True once the voucher is deleted in, or has vanished from, the source.';
COMMENT ON COLUMN "reporting"."vouchers"."deleted_at" IS 'When voucher-sync first saw the voucher deleted, UTC; null unless is_deleted.';
COMMENT ON COLUMN "reporting"."vouchers"."first_seen_at" IS 'When voucher-sync first stored the voucher, UTC.';
COMMENT ON COLUMN "reporting"."vouchers"."last_synced_at" IS 'When voucher-sync last changed this row (insert, update, delete or restore), UTC.';
COMMENT ON COLUMN "reporting"."vouchers"."last_run_id" IS 'The sync run (sync_runs.id) that last changed this row.';
COMMENT ON COLUMN "reporting"."vouchers"."raw" IS 'The record exactly as the source API last returned it (JSON), fields unknown to voucher-sync included.';
