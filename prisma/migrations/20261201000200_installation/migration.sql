-- CreateTable
-- One row: this database's identity. Queues in Redis are bound to it (jobs/queue-binding.ts), so that two
-- databases configured with one QUEUE_PREFIX on one Redis are told apart instead of sharing runs.
CREATE TABLE "installation" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "installation_pkey" PRIMARY KEY ("id")
);

INSERT INTO "installation" DEFAULT VALUES;
