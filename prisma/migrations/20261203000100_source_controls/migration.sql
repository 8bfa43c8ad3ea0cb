-- Steering a source (voucher-sync pause, resume, cancel). A pause is kept here rather than in Redis, so that it
-- survives restarts and the loss of Redis' data: workers read it before each scheduled run.
CREATE TABLE "source_controls" (
    "source" VARCHAR(32) NOT NULL,
    "paused_at" TIMESTAMPTZ(3),
    "paused_by" VARCHAR(255),
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "source_controls_pkey" PRIMARY KEY ("source")
);

-- A run asked to stop after its current page (voucher-sync cancel, Ctrl-C on voucher-sync sync): the worker that
-- reads it, in whatever process, looks for the request every few seconds and after every page.
ALTER TABLE "sync_runs" ADD COLUMN "cancel_requested_at" TIMESTAMPTZ(3);
ALTER TABLE "sync_runs" ADD COLUMN "cancel_requested_by" VARCHAR(255);
