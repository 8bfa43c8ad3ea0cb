-- What a run has to report besides its counters: e.g. a full scan that read more or fewer records than the
-- server's reported total. Text only, written by the engine from counts (no record content, no secrets).
ALTER TABLE "sync_runs" ADD COLUMN "warnings" TEXT[] NOT NULL DEFAULT ARRAY[]::TEXT[];
