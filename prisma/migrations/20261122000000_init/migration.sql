-- CreateTable
CREATE TABLE "vouchers" (
    "id" BIGSERIAL NOT NULL,
    "source" VARCHAR(32) NOT NULL,
    "source_id" VARCHAR(255) NOT NULL,
    "code" VARCHAR(255),
    "customer_id" VARCHAR(255),
    "status" VARCHAR(16) NOT NULL,
    "amount" DECIMAL(18,4),
    "redeemed_amount" DECIMAL(18,4),
    "valid_from" TIMESTAMPTZ(3),
    "valid_to" TIMESTAMPTZ(3),
    "applied_at" TIMESTAMPTZ(3),
    "source_created_at" TIMESTAMPTZ(3),
    "source_modified_at" TIMESTAMPTZ(3),
    "is_deleted" BOOLEAN NOT NULL DEFAULT false,
    "deleted_at" TIMESTAMPTZ(3),
    "raw" JSONB NOT NULL,
    "content_hash" BYTEA NOT NULL,
    "first_seen_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "last_synced_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "last_run_id" BIGINT,

    CONSTRAINT "vouchers_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "sync_state" (
    "source" VARCHAR(32) NOT NULL,
    "stream" VARCHAR(64) NOT NULL,
    "watermark" TIMESTAMPTZ(3),
    "progress" JSONB,
    "last_run_id" BIGINT,
    "last_success_at" TIMESTAMPTZ(3),
    "last_full_scan_at" TIMESTAMPTZ(3),
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "sync_state_pkey" PRIMARY KEY ("source","stream")
);

-- CreateTable
CREATE TABLE "sync_runs" (
    "id" BIGSERIAL NOT NULL,
    "source" VARCHAR(32) NOT NULL,
    "stream" VARCHAR(64) NOT NULL,
    "mode" VARCHAR(16) NOT NULL,
    "status" VARCHAR(16) NOT NULL,
    "started_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "finished_at" TIMESTAMPTZ(3),
    "heartbeat_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "pages" INTEGER NOT NULL DEFAULT 0,
    "fetched" INTEGER NOT NULL DEFAULT 0,
    "inserted" INTEGER NOT NULL DEFAULT 0,
    "updated" INTEGER NOT NULL DEFAULT 0,
    "unchanged" INTEGER NOT NULL DEFAULT 0,
    "rejected" INTEGER NOT NULL DEFAULT 0,
    "deleted" INTEGER NOT NULL DEFAULT 0,
    "api_calls" INTEGER NOT NULL DEFAULT 0,
    "rate_limited" INTEGER NOT NULL DEFAULT 0,
    "watermark_before" TIMESTAMPTZ(3),
    "watermark_after" TIMESTAMPTZ(3),
    "error" TEXT,
    "job_id" VARCHAR(255),
    "worker" VARCHAR(255),

    CONSTRAINT "sync_runs_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "rejected_records" (
    "id" BIGSERIAL NOT NULL,
    "source" VARCHAR(32) NOT NULL,
    "stream" VARCHAR(64) NOT NULL,
    "source_id" VARCHAR(255),
    "reason" TEXT NOT NULL,
    "raw" JSONB NOT NULL,
    "raw_hash" BYTEA NOT NULL,
    "run_id" BIGINT,
    "times_seen" INTEGER NOT NULL DEFAULT 1,
    "first_rejected_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "last_rejected_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "rejected_records_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "scan_seen" (
    "scan_id" BIGINT NOT NULL,
    "source_id" VARCHAR(255) NOT NULL,

    CONSTRAINT "scan_seen_pkey" PRIMARY KEY ("scan_id","source_id")
);

-- CreateIndex
CREATE UNIQUE INDEX "vouchers_source_source_id_key" ON "vouchers"("source", "source_id");

-- CreateIndex
CREATE INDEX "vouchers_source_status_idx" ON "vouchers"("source", "status");

-- CreateIndex
CREATE INDEX "vouchers_code_idx" ON "vouchers"("code");

-- CreateIndex
CREATE INDEX "vouchers_source_modified_at_idx" ON "vouchers"("source_modified_at");

-- CreateIndex
CREATE INDEX "vouchers_source_created_at_idx" ON "vouchers"("source_created_at");

-- CreateIndex
CREATE INDEX "vouchers_valid_to_idx" ON "vouchers"("valid_to");

-- CreateIndex
CREATE INDEX "sync_runs_source_stream_started_at_idx" ON "sync_runs"("source", "stream", "started_at" DESC);

-- CreateIndex
CREATE INDEX "sync_runs_status_idx" ON "sync_runs"("status");

-- CreateIndex
CREATE UNIQUE INDEX "rejected_records_source_stream_raw_hash_key" ON "rejected_records"("source", "stream", "raw_hash");

-- CreateIndex
CREATE INDEX "rejected_records_source_last_rejected_at_idx" ON "rejected_records"("source", "last_rejected_at" DESC);

-- Everything below is written by hand: Prisma's schema language cannot express it, and Prisma's diffing
-- ignores CHECK constraints and objects outside the `public` schema, so `prisma migrate dev` will not try
-- to undo it.

-- AddCheckConstraint
-- A third source needs a migration that widens this list; a typo in a source name never reaches the table.
ALTER TABLE "vouchers" ADD CONSTRAINT "vouchers_source_check" CHECK ("source" IN ('carecloud', 'cin7'));

-- AddCheckConstraint
ALTER TABLE "vouchers" ADD CONSTRAINT "vouchers_status_check" CHECK ("status" IN ('active', 'inactive', 'deleted'));

-- CreateSchema
CREATE SCHEMA "reporting";

COMMENT ON SCHEMA "reporting" IS 'Read-only views for BI tools. Their columns are a contract: add, never rename or drop.';

-- CreateView
-- BI tools read this view, never the tables: the tables may change shape, the view keeps its columns.
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
COMMENT ON COLUMN "reporting"."vouchers"."amount" IS 'Face value of the voucher, exact to 4 decimal places.';
COMMENT ON COLUMN "reporting"."vouchers"."redeemed_amount" IS 'Amount already redeemed (Cin7); null when the source does not report it.';
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
