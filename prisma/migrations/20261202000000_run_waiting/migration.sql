-- Runs an operator can read: a run held back by a rate limit, the daily budget or another run says why and
-- until when; a run split over several jobs (resumed after a pause, a restart or a wait) is one logical run.
ALTER TABLE "sync_runs" ADD COLUMN "waiting_reason" VARCHAR(32);
ALTER TABLE "sync_runs" ADD COLUMN "waiting_until" TIMESTAMPTZ(3);
ALTER TABLE "sync_runs" ADD COLUMN "logical_run_id" BIGINT;
-- How many records the scan expects in all, when the API said so (CareCloud's total) or a plan estimated it.
ALTER TABLE "sync_runs" ADD COLUMN "estimated_total" INTEGER;
UPDATE "sync_runs" SET "logical_run_id" = "id";
CREATE INDEX "sync_runs_logical_run_id_idx" ON "sync_runs"("logical_run_id");
-- The status page's charts read a source's runs by time over days: started_at per source, whatever the stream.
CREATE INDEX "sync_runs_source_started_at_idx" ON "sync_runs"("source", "started_at");
