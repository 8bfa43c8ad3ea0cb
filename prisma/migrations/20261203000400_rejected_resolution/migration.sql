-- A rejected record is kept once resolved: by a replay that read it again and found it valid ('replayed'), by a
-- run that stored a later valid version of it ('superseded'), or by a replay that found it gone ('gone').
ALTER TABLE "rejected_records" ADD COLUMN "resolved_at" TIMESTAMPTZ(3);
ALTER TABLE "rejected_records" ADD COLUMN "resolved_by_run_id" BIGINT;
ALTER TABLE "rejected_records" ADD COLUMN "resolution" VARCHAR(16);
-- Every page write looks up the open rejections of its keys (src/db/write-page.ts): by key, not by payload. The key
-- leads, so that the look-up takes this index even before the table has statistics.
CREATE INDEX "rejected_records_source_id_idx" ON "rejected_records"("source_id", "source", "stream", "resolved_at");
