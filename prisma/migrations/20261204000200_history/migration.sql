-- What changed and when (docs/design.md, "History"). A voucher's current version is its row in "vouchers" (the
-- version_* columns say since when and why); the versions it replaced, the business events between them and what
-- they add to the daily facts are written by triggers on "vouchers", in the statement that changed the row:
--   voucher_versions       every closed version: what the row held from version_from until version_to
--   voucher_events         events seen in a change: redeemed (observed), deactivated, deleted, restored (issued,
--                          expired and CareCloud's exact redemptions are read from the row by the view: no write)
--   voucher_daily_changes  what every change adds to the daily facts, by 15-minute bucket (UTC), appended; folded
--                          every minute into voucher_daily_buckets (to cut days again in another time zone) and
--                          voucher_daily_days, so that reporting.voucher_daily sums a few rows per day
-- Why: a first load writes no history row per voucher (its first version is the row), a page of unchanged content
-- fires the triggers with empty transition tables, and every path that changes a voucher (the page write,
-- deletions a reconciliation confirmed, a customer re-sync, a remap after a time-zone change) is covered.
-- Retention (HISTORY_RETENTION) prunes closed versions only; events and daily changes are never pruned.

-- AlterTable: the current version
ALTER TABLE "vouchers" ADD COLUMN "version_no" INTEGER NOT NULL DEFAULT 1,
ADD COLUMN "version_from" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
ADD COLUMN "version_from_basis" VARCHAR(16) NOT NULL DEFAULT 'observed',
ADD COLUMN "version_kind" VARCHAR(16) NOT NULL DEFAULT 'inserted',
ADD COLUMN "version_changed_fields" TEXT[] NOT NULL DEFAULT ARRAY[]::TEXT[],
ADD COLUMN "version_observed_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
ADD COLUMN "version_run_id" BIGINT;

-- The vouchers already stored: their first version, as a first load would date it.
UPDATE "vouchers" SET
       "version_from" = CASE WHEN "source_modified_at" <= now() THEN "source_modified_at" ELSE "first_seen_at" END,
       "version_from_basis" = CASE WHEN "source_modified_at" <= now() THEN 'source' ELSE 'observed' END,
       "version_observed_at" = "first_seen_at",
       "version_run_id" = "last_run_id";

-- CreateTable
CREATE TABLE "voucher_versions" (
    "voucher_id" BIGINT NOT NULL,
    "version_no" INTEGER NOT NULL,
    "source" VARCHAR(32) NOT NULL,
    "source_id" VARCHAR(255) NOT NULL,
    "kind" VARCHAR(16) NOT NULL,
    "version_from" TIMESTAMPTZ(3) NOT NULL,
    "version_to" TIMESTAMPTZ(3) NOT NULL,
    "version_from_basis" VARCHAR(16) NOT NULL,
    "observed_at" TIMESTAMPTZ(3) NOT NULL,
    "changed_fields" TEXT[] NOT NULL,
    "run_id" BIGINT,
    "code" VARCHAR(255),
    "customer_id" VARCHAR(255),
    "status" VARCHAR(16) NOT NULL,
    "amount" DECIMAL,
    "redeemed_amount" DECIMAL,
    "valid_from" TIMESTAMPTZ(3),
    "valid_to" TIMESTAMPTZ(3),
    "applied_at" TIMESTAMPTZ(3),
    "source_created_at" TIMESTAMPTZ(3),
    "source_modified_at" TIMESTAMPTZ(3),
    "is_deleted" BOOLEAN NOT NULL,
    "voucher_type" VARCHAR(255),
    "description" TEXT,
    "store_id" VARCHAR(255),
    "reward_id" VARCHAR(255),
    "reward_name" VARCHAR(255),
    CONSTRAINT "voucher_versions_pkey" PRIMARY KEY ("voucher_id", "version_no")
);
-- Retention looks for closed versions by their end.
CREATE INDEX "voucher_versions_version_to_idx" ON "voucher_versions"("version_to");

-- CreateTable
CREATE TABLE "voucher_events" (
    "id" BIGSERIAL NOT NULL,
    "voucher_id" BIGINT NOT NULL,
    "source" VARCHAR(32) NOT NULL,
    "source_id" VARCHAR(255) NOT NULL,
    "event" VARCHAR(16) NOT NULL,
    "event_at" TIMESTAMPTZ(3) NOT NULL,
    "precision" VARCHAR(16) NOT NULL,
    "observed_after" TIMESTAMPTZ(3),
    "observed_before" TIMESTAMPTZ(3),
    "amount" DECIMAL,
    "run_id" BIGINT,
    "recorded_at" TIMESTAMPTZ(3) NOT NULL,
    CONSTRAINT "voucher_events_pkey" PRIMARY KEY ("id")
);
CREATE INDEX "voucher_events_voucher_id_idx" ON "voucher_events"("voucher_id");
CREATE INDEX "voucher_events_source_event_event_at_idx" ON "voucher_events"("source", "event", "event_at");

-- CreateTable: what pages append (a page looks nothing up and waits on no other page); fold_voucher_daily_changes
-- (every minute, from a scheduler) moves it into voucher_daily_buckets and voucher_daily_days.
CREATE TABLE "voucher_daily_changes" (
    "id" BIGSERIAL NOT NULL,
    "bucket" TIMESTAMPTZ(3) NOT NULL,
    "source" VARCHAR(32) NOT NULL,
    "status" VARCHAR(16) NOT NULL,
    "vouchers" BIGINT NOT NULL DEFAULT 0,
    "open_balance" DECIMAL NOT NULL DEFAULT 0,
    "issued_count" BIGINT NOT NULL DEFAULT 0,
    "issued_amount" DECIMAL NOT NULL DEFAULT 0,
    "redeemed_amount" DECIMAL NOT NULL DEFAULT 0,
    CONSTRAINT "voucher_daily_changes_pkey" PRIMARY KEY ("id")
);

-- CreateTable: the changes folded, one row per 15-minute bucket (UTC), source and status: kept to cut the days again
-- when REPORTING_TIMEZONE changes.
CREATE TABLE "voucher_daily_buckets" (
    "bucket" TIMESTAMPTZ(3) NOT NULL,
    "source" VARCHAR(32) NOT NULL,
    "status" VARCHAR(16) NOT NULL,
    "vouchers" BIGINT NOT NULL DEFAULT 0,
    "open_balance" DECIMAL NOT NULL DEFAULT 0,
    "issued_count" BIGINT NOT NULL DEFAULT 0,
    "issued_amount" DECIMAL NOT NULL DEFAULT 0,
    "redeemed_amount" DECIMAL NOT NULL DEFAULT 0,
    CONSTRAINT "voucher_daily_buckets_pkey" PRIMARY KEY ("bucket", "source", "status")
);

-- CreateTable: the changes folded into days of reporting_settings.days_timezone: what reporting.voucher_daily sums.
CREATE TABLE "voucher_daily_days" (
    "day" DATE NOT NULL,
    "source" VARCHAR(32) NOT NULL,
    "status" VARCHAR(16) NOT NULL,
    "vouchers" BIGINT NOT NULL DEFAULT 0,
    "open_balance" DECIMAL NOT NULL DEFAULT 0,
    "issued_count" BIGINT NOT NULL DEFAULT 0,
    "issued_amount" DECIMAL NOT NULL DEFAULT 0,
    "redeemed_amount" DECIMAL NOT NULL DEFAULT 0,
    CONSTRAINT "voucher_daily_days_pkey" PRIMARY KEY ("day", "source", "status")
);

-- CreateTable: settings the reporting views read (a view cannot read the process' environment). One row.
CREATE TABLE "reporting_settings" (
    "id" BOOLEAN NOT NULL DEFAULT true,
    "timezone" VARCHAR(64) NOT NULL DEFAULT 'UTC',
    "days_timezone" VARCHAR(64) NOT NULL DEFAULT 'UTC',
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "reporting_settings_pkey" PRIMARY KEY ("id")
);
INSERT INTO "reporting_settings" ("id") VALUES (true);

-- Everything below is written by hand.
ALTER TABLE "vouchers" ADD CONSTRAINT "vouchers_version_kind_check"
    CHECK ("version_kind" IN ('inserted', 'updated', 'deleted', 'restored'));
ALTER TABLE "vouchers" ADD CONSTRAINT "vouchers_version_from_basis_check"
    CHECK ("version_from_basis" IN ('source', 'observed'));
ALTER TABLE "voucher_versions" ADD CONSTRAINT "voucher_versions_interval_check" CHECK ("version_to" >= "version_from");
ALTER TABLE "voucher_events" ADD CONSTRAINT "voucher_events_event_check"
    CHECK ("event" IN ('redeemed', 'deactivated', 'deleted', 'restored'));
ALTER TABLE "voucher_events" ADD CONSTRAINT "voucher_events_precision_check" CHECK ("precision" IN ('exact', 'observed'));
ALTER TABLE "reporting_settings" ADD CONSTRAINT "reporting_settings_one_row" CHECK ("id");

-- A change of content opens a new version: what the columns hold, deleted or not. A rewrite that changes only the
-- bookkeeping (last_synced_at, last_run_id) or only fields voucher-sync does not map (they live in raw) does not.
-- The new version starts at the source's own modification time when it moved, is not in the future and comes after
-- the version it replaces; otherwise when voucher-sync observed it (now(): the transaction's time, the same for every
-- row of a page). Deletions and restorations are always observed: the source does not date them.
CREATE FUNCTION "vouchers_next_version"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF (OLD.code, OLD.customer_id, OLD.status, OLD.amount, OLD.redeemed_amount, OLD.valid_from, OLD.valid_to,
      OLD.applied_at, OLD.source_created_at, OLD.is_deleted, OLD.voucher_type, OLD.description, OLD.store_id,
      OLD.reward_id, OLD.reward_name)
     IS NOT DISTINCT FROM
     (NEW.code, NEW.customer_id, NEW.status, NEW.amount, NEW.redeemed_amount, NEW.valid_from, NEW.valid_to,
      NEW.applied_at, NEW.source_created_at, NEW.is_deleted, NEW.voucher_type, NEW.description, NEW.store_id,
      NEW.reward_id, NEW.reward_name) THEN
    RETURN NEW;
  END IF;
  NEW.version_no := OLD.version_no + 1;
  NEW.version_kind := CASE WHEN NEW.is_deleted AND NOT OLD.is_deleted THEN 'deleted'
                           WHEN OLD.is_deleted AND NOT NEW.is_deleted THEN 'restored'
                           ELSE 'updated' END;
  IF NEW.version_kind = 'updated' AND NEW.source_modified_at <= now()
     AND NEW.source_modified_at IS DISTINCT FROM OLD.source_modified_at AND NEW.source_modified_at > OLD.version_from THEN
    NEW.version_from := NEW.source_modified_at;
    NEW.version_from_basis := 'source';
  ELSE
    NEW.version_from := GREATEST(now(), OLD.version_from);
    NEW.version_from_basis := 'observed';
  END IF;
  NEW.version_changed_fields := ARRAY(
    SELECT f.name FROM (VALUES
      ('code', OLD.code IS DISTINCT FROM NEW.code),
      ('customer_id', OLD.customer_id IS DISTINCT FROM NEW.customer_id),
      ('status', OLD.status IS DISTINCT FROM NEW.status),
      ('amount', OLD.amount IS DISTINCT FROM NEW.amount),
      ('redeemed_amount', OLD.redeemed_amount IS DISTINCT FROM NEW.redeemed_amount),
      ('valid_from', OLD.valid_from IS DISTINCT FROM NEW.valid_from),
      ('valid_to', OLD.valid_to IS DISTINCT FROM NEW.valid_to),
      ('applied_at', OLD.applied_at IS DISTINCT FROM NEW.applied_at),
      ('source_created_at', OLD.source_created_at IS DISTINCT FROM NEW.source_created_at),
      ('is_deleted', OLD.is_deleted IS DISTINCT FROM NEW.is_deleted),
      ('voucher_type', OLD.voucher_type IS DISTINCT FROM NEW.voucher_type),
      ('description', OLD.description IS DISTINCT FROM NEW.description),
      ('store_id', OLD.store_id IS DISTINCT FROM NEW.store_id),
      ('reward_id', OLD.reward_id IS DISTINCT FROM NEW.reward_id),
      ('reward_name', OLD.reward_name IS DISTINCT FROM NEW.reward_name)) AS f(name, differs)
     WHERE f.differs);
  NEW.version_observed_at := now();
  NEW.version_run_id := NEW.last_run_id;
  RETURN NEW;
END $$;

-- What the history reads of a row: every column but raw and the bookkeeping, so that a statement's rows pass to
-- voucher_history_record without their documents.
CREATE TYPE "voucher_state" AS (
    "id" BIGINT, "source" VARCHAR(32), "source_id" VARCHAR(255), "code" VARCHAR(255), "customer_id" VARCHAR(255),
    "status" VARCHAR(16), "amount" DECIMAL, "redeemed_amount" DECIMAL, "valid_from" TIMESTAMPTZ(3),
    "valid_to" TIMESTAMPTZ(3), "applied_at" TIMESTAMPTZ(3), "source_created_at" TIMESTAMPTZ(3),
    "source_modified_at" TIMESTAMPTZ(3), "is_deleted" BOOLEAN, "voucher_type" VARCHAR(255), "description" TEXT,
    "store_id" VARCHAR(255), "reward_id" VARCHAR(255), "reward_name" VARCHAR(255), "last_run_id" BIGINT,
    "version_no" INTEGER, "version_from" TIMESTAMPTZ(3), "version_from_basis" VARCHAR(16), "version_kind" VARCHAR(16),
    "version_changed_fields" TEXT[], "version_observed_at" TIMESTAMPTZ(3), "version_run_id" BIGINT
);

-- Records the changes of one statement: `news` as the rows are now, `olds` as they were (matched by id; null for a
-- statement that inserted them). Only rows that opened a version are passed (see the triggers).
-- plpgsql rather than sql: its statement's plan is cached for the session, where a sql function's is made again at
-- every call. The plan is made once (force_generic_plan) and must stay right as the tables grow from empty during a
-- first load: with sequential scans off it reaches every table through an index, whatever the statistics said when
-- it was made.
CREATE FUNCTION "voucher_history_record"(olds "voucher_state"[], news "voucher_state"[]) RETURNS void LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off AS $fn$
BEGIN
WITH pair AS (
  SELECT o, n FROM unnest(news) AS n LEFT JOIN unnest(olds) AS o ON o.id = n.id
),
-- The last reconciliation that succeeded read every voucher after it started: a change seen now happened after
-- that start (or after the previous version was stored, whichever is later).
last_full AS (
  SELECT r.source, max(r.started_at) AS started_at
    FROM sync_runs r
   WHERE r.mode = 'full' AND r.status = 'succeeded' AND r.source IN (SELECT DISTINCT (p.n).source FROM pair p)
   GROUP BY r.source
),
t AS (
  SELECT p.o, p.n, (p.o).id IS NULL AS fresh, (p.n).version_from AS vfrom,
         (p.n).status AS status_after, (p.o).status AS status_before,
         CASE WHEN (p.o).id IS NULL THEN lf.started_at ELSE GREATEST((p.o).version_observed_at, lf.started_at) END
           AS seen_after,
         (p.n).applied_at IS NOT NULL AND ((p.o).id IS NULL OR (p.o).applied_at IS NULL) AS applied,
         COALESCE((p.n).redeemed_amount, 0) > COALESCE((p.o).redeemed_amount, 0) AS redeemed_more,
         -- What each side leaves open: its remaining value while active (amount less what was redeemed; nothing once
         -- applied), else 0. (Written out rather than a function: a call per row would cost more than the rest.)
         CASE WHEN (p.n).status <> 'active' OR ((p.n).applied_at IS NOT NULL AND (p.n).redeemed_amount IS NULL) THEN 0
              ELSE GREATEST(COALESCE((p.n).amount, 0) - COALESCE((p.n).redeemed_amount, 0), 0) END AS open_new,
         CASE WHEN (p.o).id IS NULL OR (p.o).status <> 'active'
                   OR ((p.o).applied_at IS NOT NULL AND (p.o).redeemed_amount IS NULL) THEN 0
              ELSE GREATEST(COALESCE((p.o).amount, 0) - COALESCE((p.o).redeemed_amount, 0), 0) END AS open_old
    FROM pair p
    LEFT JOIN last_full lf ON lf.source = (p.n).source
),
closed AS (
  INSERT INTO voucher_versions (voucher_id, version_no, source, source_id, kind, version_from, version_to,
         version_from_basis, observed_at, changed_fields, run_id, code, customer_id, status, amount, redeemed_amount,
         valid_from, valid_to, applied_at, source_created_at, source_modified_at, is_deleted, voucher_type, description,
         store_id, reward_id, reward_name)
  SELECT (t.o).id, (t.o).version_no, (t.o).source, (t.o).source_id, (t.o).version_kind, (t.o).version_from, t.vfrom,
         (t.o).version_from_basis, (t.o).version_observed_at, (t.o).version_changed_fields, (t.o).version_run_id,
         (t.o).code, (t.o).customer_id, (t.o).status, (t.o).amount, (t.o).redeemed_amount, (t.o).valid_from,
         (t.o).valid_to, (t.o).applied_at, (t.o).source_created_at, (t.o).source_modified_at, (t.o).is_deleted,
         (t.o).voucher_type, (t.o).description, (t.o).store_id, (t.o).reward_id, (t.o).reward_name
    FROM t WHERE NOT t.fresh
),
-- The business events of each change. An observed event is dated when it was seen (observed_before), between the
-- bounds it is known to lie in. (issued, expired and exact redemptions are read from the row by the view.)
ev AS (
  SELECT (t.n).id AS voucher_id, (t.n).source, (t.n).source_id, e.event,
         CASE WHEN e.exact_at IS NULL THEN 'observed' ELSE 'exact' END AS precision,
         COALESCE(e.exact_at, now()) AS event_at,
         CASE WHEN e.exact_at IS NULL THEN e.after END AS observed_after,
         CASE WHEN e.exact_at IS NULL THEN now() END AS observed_before,
         e.amount, t.status_after, (t.n).last_run_id AS run_id
    FROM t
   CROSS JOIN LATERAL (VALUES
           -- CareCloud's applied_date is exact; a rise of Cin7's RedeemedAmount is only observed
           ('redeemed', t.applied OR t.redeemed_more,
            CASE WHEN t.applied THEN (t.n).applied_at END,
            CASE WHEN t.fresh THEN (t.n).source_created_at ELSE t.seen_after END,
            CASE WHEN (t.n).redeemed_amount IS NOT NULL OR (t.o).redeemed_amount IS NOT NULL
                 THEN COALESCE((t.n).redeemed_amount, 0) - COALESCE((t.o).redeemed_amount, 0)
                 ELSE (t.n).amount END),
           ('deactivated', t.status_after = 'inactive' AND (t.fresh OR t.status_before = 'active')
                           AND NOT (t.applied OR t.redeemed_more),
            CASE WHEN (t.n).version_from_basis = 'source' THEN t.vfrom END,
            CASE WHEN t.fresh THEN (t.n).source_created_at ELSE t.seen_after END, NULL::decimal),
           ('deleted', (t.n).version_kind = 'deleted' OR (t.fresh AND (t.n).is_deleted),
            NULL::timestamptz, CASE WHEN t.fresh THEN (t.n).source_created_at ELSE t.seen_after END, NULL::decimal),
           ('restored', (t.n).version_kind = 'restored', NULL::timestamptz, t.seen_after, NULL::decimal)
         ) AS e(event, happened, exact_at, after, amount)
   WHERE e.happened
),
stored_events AS (
  INSERT INTO voucher_events (voucher_id, source, source_id, event, event_at, precision, observed_after,
         observed_before, amount, run_id, recorded_at)
  SELECT voucher_id, source, source_id, event, event_at, precision, observed_after, observed_before, amount, run_id,
         now()
    FROM ev
   -- An exact redemption is CareCloud's applied_date, which the row keeps: the view reads it from there.
   WHERE NOT (ev.event = 'redeemed' AND ev.precision = 'exact')
),
-- What each change adds to the daily facts. A version counts in its status from version_from until it closes; its
-- open value counts from version_from until it closes or its valid_to passes, whichever comes first: so a voucher's
-- open value is booked to leave the balance at valid_to, and that is undone when its version closes earlier.
delta AS (
  SELECT t.vfrom AS at, (t.n).source, t.status_after AS status, 1 AS vouchers,
         CASE WHEN (t.n).valid_to IS NULL OR (t.n).valid_to > t.vfrom THEN t.open_new ELSE 0 END AS open_balance,
         0 AS issued_count, 0::decimal AS issued_amount, 0::decimal AS redeemed_amount
    FROM t
  UNION ALL
  SELECT (t.n).valid_to, (t.n).source, t.status_after, 0, -t.open_new, 0, 0, 0
    FROM t WHERE (t.n).valid_to > t.vfrom AND t.open_new <> 0
  UNION ALL
  SELECT t.vfrom, (t.o).source, t.status_before, -1,
         CASE WHEN (t.o).valid_to IS NULL OR (t.o).valid_to > t.vfrom THEN -t.open_old ELSE 0 END, 0, 0, 0
    FROM t WHERE NOT t.fresh
  UNION ALL
  SELECT (t.o).valid_to, (t.o).source, t.status_before, 0, t.open_old, 0, 0, 0
    FROM t WHERE NOT t.fresh AND (t.o).valid_to > t.vfrom AND t.open_old <> 0
  UNION ALL
  -- issued: dated by the source's creation time (the first load too), in the status of the first version
  SELECT COALESCE((t.n).source_created_at, now()), (t.n).source, t.status_after, 0, 0, 1, COALESCE((t.n).amount, 0), 0
    FROM t WHERE t.fresh
  UNION ALL
  SELECT ev.event_at, ev.source, ev.status_after, 0, 0, 0, 0, COALESCE(ev.amount, 0)
    FROM ev WHERE ev.event = 'redeemed'
)
INSERT INTO voucher_daily_changes (bucket, source, status, vouchers, open_balance, issued_count, issued_amount,
       redeemed_amount)
SELECT date_bin('15 minutes', delta.at, TIMESTAMPTZ '2000-01-01 00:00:00+00'), delta.source, delta.status,
       sum(delta.vouchers), sum(delta.open_balance), sum(delta.issued_count), sum(delta.issued_amount),
       sum(delta.redeemed_amount)
  FROM delta
 GROUP BY 1, 2, 3;
END
$fn$;

-- Moves what pages appended to voucher_daily_changes into the 15-minute buckets and the days of the reporting time
-- zone; when REPORTING_TIMEZONE changed since, the days are first cut again from the buckets. Rows a transaction
-- commits meanwhile are not in this statement's snapshot: they stay for the next time. One at a time (advisory lock).
-- Returns the rows moved.
CREATE FUNCTION "fold_voucher_daily_changes"() RETURNS BIGINT LANGUAGE plpgsql AS $$
DECLARE
  zone TEXT;
  moved BIGINT;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('voucher-sync'), hashtext('voucher-daily'));
  SELECT s.timezone INTO zone FROM reporting_settings s WHERE s.timezone IS DISTINCT FROM s.days_timezone;
  IF zone IS NOT NULL THEN
    DELETE FROM voucher_daily_days;
    INSERT INTO voucher_daily_days (day, source, status, vouchers, open_balance, issued_count, issued_amount,
           redeemed_amount)
    SELECT (b.bucket AT TIME ZONE zone)::DATE, b.source, b.status, sum(b.vouchers), sum(b.open_balance),
           sum(b.issued_count), sum(b.issued_amount), sum(b.redeemed_amount)
      FROM voucher_daily_buckets b GROUP BY 1, 2, 3;
    UPDATE reporting_settings SET days_timezone = zone;
  END IF;
  SELECT s.days_timezone INTO zone FROM reporting_settings s;
  WITH gone AS (DELETE FROM voucher_daily_changes RETURNING *),
  buckets AS (
    INSERT INTO voucher_daily_buckets AS b (bucket, source, status, vouchers, open_balance, issued_count,
           issued_amount, redeemed_amount)
    SELECT g.bucket, g.source, g.status, sum(g.vouchers), sum(g.open_balance), sum(g.issued_count),
           sum(g.issued_amount), sum(g.redeemed_amount)
      FROM gone g GROUP BY 1, 2, 3
    ON CONFLICT (bucket, source, status) DO UPDATE SET
           vouchers = b.vouchers + EXCLUDED.vouchers, open_balance = b.open_balance + EXCLUDED.open_balance,
           issued_count = b.issued_count + EXCLUDED.issued_count, issued_amount = b.issued_amount + EXCLUDED.issued_amount,
           redeemed_amount = b.redeemed_amount + EXCLUDED.redeemed_amount
  ),
  days AS (
    INSERT INTO voucher_daily_days AS d (day, source, status, vouchers, open_balance, issued_count, issued_amount,
           redeemed_amount)
    SELECT (g.bucket AT TIME ZONE zone)::DATE, g.source, g.status, sum(g.vouchers), sum(g.open_balance),
           sum(g.issued_count), sum(g.issued_amount), sum(g.redeemed_amount)
      FROM gone g GROUP BY 1, 2, 3
    ON CONFLICT (day, source, status) DO UPDATE SET
           vouchers = d.vouchers + EXCLUDED.vouchers, open_balance = d.open_balance + EXCLUDED.open_balance,
           issued_count = d.issued_count + EXCLUDED.issued_count, issued_amount = d.issued_amount + EXCLUDED.issued_amount,
           redeemed_amount = d.redeemed_amount + EXCLUDED.redeemed_amount
  )
  SELECT count(*) INTO moved FROM gone;
  RETURN moved;
END $$;

CREATE FUNCTION "vouchers_history_after_insert"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM voucher_history_record(NULL, array_agg(
            ROW(n.id, n.source, n.source_id, n.code, n.customer_id, n.status, n.amount, n.redeemed_amount, n.valid_from,
                n.valid_to, n.applied_at, n.source_created_at, n.source_modified_at, n.is_deleted, n.voucher_type,
                n.description, n.store_id, n.reward_id, n.reward_name, n.last_run_id, n.version_no, n.version_from,
                n.version_from_basis, n.version_kind, n.version_changed_fields, n.version_observed_at,
                n.version_run_id)::voucher_state))
     FROM new_rows n HAVING count(*) > 0;
  RETURN NULL;
END $$;

CREATE FUNCTION "vouchers_history_after_update"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM voucher_history_record(
            array_agg(ROW(o.id, o.source, o.source_id, o.code, o.customer_id, o.status, o.amount, o.redeemed_amount,
                          o.valid_from, o.valid_to, o.applied_at, o.source_created_at, o.source_modified_at,
                          o.is_deleted, o.voucher_type, o.description, o.store_id, o.reward_id, o.reward_name,
                          o.last_run_id, o.version_no, o.version_from, o.version_from_basis, o.version_kind,
                          o.version_changed_fields, o.version_observed_at, o.version_run_id)::voucher_state),
            array_agg(ROW(n.id, n.source, n.source_id, n.code, n.customer_id, n.status, n.amount, n.redeemed_amount,
                          n.valid_from, n.valid_to, n.applied_at, n.source_created_at, n.source_modified_at,
                          n.is_deleted, n.voucher_type, n.description, n.store_id, n.reward_id, n.reward_name,
                          n.last_run_id, n.version_no, n.version_from, n.version_from_basis, n.version_kind,
                          n.version_changed_fields, n.version_observed_at, n.version_run_id)::voucher_state))
     FROM old_rows o JOIN new_rows n ON n.id = o.id
    WHERE n.version_no <> o.version_no
   HAVING count(*) > 0;
  RETURN NULL;
END $$;

-- The vouchers already stored: what they add to the daily facts, in batches.
DO $$
DECLARE
  low BIGINT := 0;
  high BIGINT;
BEGIN
  LOOP
    SELECT max(id) INTO high FROM (SELECT id FROM vouchers WHERE id > low ORDER BY id LIMIT 10000) b;
    EXIT WHEN high IS NULL;
    PERFORM voucher_history_record(NULL, array_agg(
              ROW(v.id, v.source, v.source_id, v.code, v.customer_id, v.status, v.amount, v.redeemed_amount,
                  v.valid_from, v.valid_to, v.applied_at, v.source_created_at, v.source_modified_at, v.is_deleted,
                  v.voucher_type, v.description, v.store_id, v.reward_id, v.reward_name, v.last_run_id, v.version_no,
                  v.version_from, v.version_from_basis, v.version_kind, v.version_changed_fields,
                  v.version_observed_at, v.version_run_id)::voucher_state))
       FROM vouchers v WHERE v.id > low AND v.id <= high;
    low := high;
  END LOOP;
END $$;
SELECT fold_voucher_daily_changes();

CREATE TRIGGER "vouchers_next_version" BEFORE UPDATE ON "vouchers"
    FOR EACH ROW EXECUTE FUNCTION vouchers_next_version();
CREATE TRIGGER "vouchers_history_insert" AFTER INSERT ON "vouchers"
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION vouchers_history_after_insert();
CREATE TRIGGER "vouchers_history_update" AFTER UPDATE ON "vouchers"
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION vouchers_history_after_update();

-- CreateView: the closed versions, and each voucher's current one (its row).
CREATE VIEW "reporting"."voucher_history" AS
SELECT
    h."voucher_id", h."version_no", h."source", h."source_id", h."kind", h."version_from", h."version_to",
    h."version_from_basis", false AS "is_current", h."changed_fields", h."observed_at", h."run_id", h."code",
    h."customer_id", h."status", h."amount", h."redeemed_amount", h."valid_from", h."valid_to", h."applied_at",
    h."source_created_at", h."source_modified_at", h."is_deleted", h."voucher_type",
    "reporting"."without_email"(h."description") AS "description", h."store_id", h."reward_id", h."reward_name"
FROM "voucher_versions" AS h
UNION ALL
SELECT
    v."id", v."version_no", v."source", v."source_id", v."version_kind", v."version_from", NULL::TIMESTAMPTZ(3),
    v."version_from_basis", true, v."version_changed_fields", v."version_observed_at", v."version_run_id", v."code",
    v."customer_id", v."status", v."amount", v."redeemed_amount", v."valid_from", v."valid_to", v."applied_at",
    v."source_created_at", v."source_modified_at", v."is_deleted", v."voucher_type",
    "reporting"."without_email"(v."description"), v."store_id", v."reward_id", v."reward_name"
FROM "vouchers" AS v;

-- CreateView: the stored events, and those the row itself dates: issued (source_created_at), CareCloud's exact
-- redemptions (applied_date) and expiries (valid_to passed with value left, unless deleted or applied first).
CREATE VIEW "reporting"."voucher_events" AS
SELECT
    e."id" AS "event_id", e."voucher_id", e."source", e."source_id", e."event", e."event_at", e."precision",
    e."observed_after", e."observed_before", e."amount", e."run_id"
FROM "voucher_events" AS e
UNION ALL
SELECT
    NULL::BIGINT, v."id", v."source", v."source_id", 'issued'::VARCHAR(16), COALESCE(v."source_created_at", v."first_seen_at"),
    (CASE WHEN v."source_created_at" IS NULL THEN 'observed' ELSE 'exact' END)::VARCHAR(16), NULL::TIMESTAMPTZ(3),
    CASE WHEN v."source_created_at" IS NULL THEN v."first_seen_at" END, v."amount", NULL::BIGINT
FROM "vouchers" AS v
UNION ALL
SELECT
    NULL::BIGINT, v."id", v."source", v."source_id", 'redeemed'::VARCHAR(16), v."applied_at", 'exact'::VARCHAR(16),
    NULL::TIMESTAMPTZ(3), NULL::TIMESTAMPTZ(3), COALESCE(v."redeemed_amount", v."amount"), NULL::BIGINT
FROM "vouchers" AS v
WHERE v."applied_at" IS NOT NULL
UNION ALL
SELECT
    NULL::BIGINT, v."id", v."source", v."source_id", 'expired'::VARCHAR(16), v."valid_to", 'exact'::VARCHAR(16),
    NULL::TIMESTAMPTZ(3), NULL::TIMESTAMPTZ(3), COALESCE(v."amount", 0) - COALESCE(v."redeemed_amount", 0), NULL::BIGINT
FROM "vouchers" AS v
WHERE v."valid_to" <= now()
  AND NOT (v."is_deleted" AND COALESCE(v."deleted_at" <= v."valid_to", false))
  AND (v."applied_at" IS NULL OR v."applied_at" > v."valid_to")
  AND COALESCE(v."amount", 0) - COALESCE(v."redeemed_amount", 0) > 0;

-- CreateView: a running sum over the days (in REPORTING_TIMEZONE) of the daily changes, from each series' first day
-- to today.
CREATE VIEW "reporting"."voucher_daily" AS
WITH zone AS (
  SELECT COALESCE((SELECT s."days_timezone" FROM "reporting_settings" s), 'UTC') AS "name"
),
-- The folded days, and what pages appended since the last fold (a minute's writes at most).
per_day AS (
  SELECT f."day", f."source", f."status", sum(f."vouchers") AS "vouchers", sum(f."open_balance") AS "open_balance",
         sum(f."issued_count") AS "issued_count", sum(f."issued_amount") AS "issued_amount",
         sum(f."redeemed_amount") AS "redeemed_amount"
    FROM (SELECT d."day", d."source", d."status", d."vouchers", d."open_balance", d."issued_count", d."issued_amount",
                 d."redeemed_amount"
            FROM "voucher_daily_days" d
          UNION ALL
          SELECT (c."bucket" AT TIME ZONE z."name")::DATE, c."source", c."status", c."vouchers", c."open_balance",
                 c."issued_count", c."issued_amount", c."redeemed_amount"
            FROM "voucher_daily_changes" c CROSS JOIN zone z) f
   GROUP BY 1, 2, 3
),
-- Every day from each series' first to today, so that a day without changes still has its balance.
series AS (
  SELECT f."source", f."status", d::DATE AS "day"
    FROM (SELECT p."source", p."status", min(p."day") AS "first_day" FROM per_day p GROUP BY 1, 2) f
   CROSS JOIN zone z
   CROSS JOIN LATERAL generate_series(f."first_day", GREATEST(f."first_day", (now() AT TIME ZONE z."name")::DATE),
                                      INTERVAL '1 day') AS d
),
-- A union and a sum rather than a join: a few thousand rows, whatever the planner guesses of them.
filled AS (
  SELECT a."day", a."source", a."status", sum(a."vouchers") AS "vouchers", sum(a."open_balance") AS "open_balance",
         sum(a."issued_count") AS "issued_count", sum(a."issued_amount") AS "issued_amount",
         sum(a."redeemed_amount") AS "redeemed_amount"
    FROM (SELECT p."day", p."source", p."status", p."vouchers", p."open_balance", p."issued_count", p."issued_amount",
                 p."redeemed_amount"
            FROM per_day p
          UNION ALL
          SELECT s."day", s."source", s."status", 0, 0, 0, 0, 0 FROM series s) a
   GROUP BY 1, 2, 3
),
-- Running sums over every day, the future ones too (expiries booked ahead), which are then left out.
running AS (
  SELECT f."day", f."source", f."status", f."issued_count", f."issued_amount", f."redeemed_amount",
         sum(f."vouchers") OVER w AS "vouchers", sum(f."open_balance") OVER w AS "open_balance"
    FROM filled f
  WINDOW w AS (PARTITION BY f."source", f."status" ORDER BY f."day")
)
SELECT
    r."day",
    r."source",
    r."status",
    r."issued_count"::BIGINT AS "issued_count",
    r."issued_amount",
    r."redeemed_amount",
    r."vouchers"::BIGINT AS "vouchers",
    r."open_balance"
FROM running r CROSS JOIN zone z
WHERE r."day" <= (now() AT TIME ZONE z."name")::DATE;

COMMENT ON VIEW "reporting"."voucher_history" IS 'Every version of every voucher: what its fields held from version_from until version_to. One row per change of content; re-reads of the same content add none. Point in time: version_from <= t AND (version_to IS NULL OR version_to > t).';
COMMENT ON COLUMN "reporting"."voucher_history"."voucher_id" IS 'The voucher (reporting.vouchers.id); with version_no, the key of this version.';
COMMENT ON COLUMN "reporting"."voucher_history"."version_no" IS 'The version''s number: 1 for the first, one more for each change.';
COMMENT ON COLUMN "reporting"."voucher_history"."source" IS 'System the voucher comes from: ''carecloud'' or ''cin7''.';
COMMENT ON COLUMN "reporting"."voucher_history"."source_id" IS 'The voucher''s id in its source.';
COMMENT ON COLUMN "reporting"."voucher_history"."kind" IS 'What opened this version: ''inserted'' (first seen), ''updated'', ''deleted'' or ''restored''.';
COMMENT ON COLUMN "reporting"."voucher_history"."version_from" IS 'When this version began, UTC: the source''s own modification time when it has one (version_from_basis ''source''), else when voucher-sync observed the change (''observed'').';
COMMENT ON COLUMN "reporting"."voucher_history"."version_to" IS 'When the next version began, UTC; null while this one is current. Versions of a voucher never overlap and leave no gaps.';
COMMENT ON COLUMN "reporting"."voucher_history"."version_from_basis" IS '''source'' (version_from is the source''s modification time) or ''observed'' (the time voucher-sync stored the change).';
COMMENT ON COLUMN "reporting"."voucher_history"."is_current" IS 'True for the version the voucher holds now (version_to is null).';
COMMENT ON COLUMN "reporting"."voucher_history"."changed_fields" IS 'The fields whose value differs from the previous version; empty for the first.';
COMMENT ON COLUMN "reporting"."voucher_history"."observed_at" IS 'When voucher-sync stored this version, UTC.';
COMMENT ON COLUMN "reporting"."voucher_history"."run_id" IS 'The sync run (sync_runs.id) that stored this version.';
COMMENT ON COLUMN "reporting"."voucher_history"."code" IS 'Voucher code as shown to the customer.';
COMMENT ON COLUMN "reporting"."voucher_history"."customer_id" IS 'Customer id in the source system; null when the voucher has none.';
COMMENT ON COLUMN "reporting"."voucher_history"."status" IS '''active'', ''inactive'' or ''deleted'', as in reporting.vouchers.';
COMMENT ON COLUMN "reporting"."voucher_history"."amount" IS 'Face value of the voucher, exactly as the source sent it.';
COMMENT ON COLUMN "reporting"."voucher_history"."redeemed_amount" IS 'Amount redeemed so far (Cin7); null when the source does not report it.';
COMMENT ON COLUMN "reporting"."voucher_history"."valid_from" IS 'Start of validity, UTC.';
COMMENT ON COLUMN "reporting"."voucher_history"."valid_to" IS 'End of validity (expiry), UTC.';
COMMENT ON COLUMN "reporting"."voucher_history"."applied_at" IS 'When the voucher was applied (redeemed), UTC; null if not applied.';
COMMENT ON COLUMN "reporting"."voucher_history"."source_created_at" IS 'When the source created the voucher, UTC.';
COMMENT ON COLUMN "reporting"."voucher_history"."source_modified_at" IS 'When the source last changed the voucher, UTC; null for Cin7.';
COMMENT ON COLUMN "reporting"."voucher_history"."is_deleted" IS 'True while the voucher is deleted in, or vanished from, the source.';
COMMENT ON COLUMN "reporting"."voucher_history"."voucher_type" IS 'Cin7 voucher type (Type); null for CareCloud.';
COMMENT ON COLUMN "reporting"."voucher_history"."description" IS 'Cin7 description, e-mail addresses in it replaced; null for CareCloud.';
COMMENT ON COLUMN "reporting"."voucher_history"."store_id" IS 'CareCloud store the voucher belongs to; null for Cin7.';
COMMENT ON COLUMN "reporting"."voucher_history"."reward_id" IS 'CareCloud reward (campaign) id; null for Cin7.';
COMMENT ON COLUMN "reporting"."voucher_history"."reward_name" IS 'CareCloud reward (campaign) name; null for Cin7.';

COMMENT ON VIEW "reporting"."voucher_events" IS 'Business events of every voucher, derived from its history: issued, redeemed, expired, deactivated, deleted, restored. Pruning old versions does not change them.';
COMMENT ON COLUMN "reporting"."voucher_events"."event_id" IS 'Surrogate key of a stored event; null for the events read from the voucher itself: issued, expired and exact (CareCloud) redeemed.';
COMMENT ON COLUMN "reporting"."voucher_events"."voucher_id" IS 'The voucher (reporting.vouchers.id).';
COMMENT ON COLUMN "reporting"."voucher_events"."source" IS 'System the voucher comes from: ''carecloud'' or ''cin7''.';
COMMENT ON COLUMN "reporting"."voucher_events"."source_id" IS 'The voucher''s id in its source.';
COMMENT ON COLUMN "reporting"."voucher_events"."event" IS '''issued'', ''redeemed'', ''expired'' (valid_to passed with value left), ''deactivated'' (made inactive without a redemption), ''deleted'' or ''restored''.';
COMMENT ON COLUMN "reporting"."voucher_events"."event_at" IS 'When it happened, UTC: exact when precision is ''exact''; when voucher-sync saw it (observed_before) when ''observed''.';
COMMENT ON COLUMN "reporting"."voucher_events"."precision" IS '''exact'' (a time the source gives: created_at, applied_date, valid_to, last_change) or ''observed'' (it happened between observed_after and observed_before).';
COMMENT ON COLUMN "reporting"."voucher_events"."observed_after" IS 'For an observed event: it happened after this time, UTC (null: no earlier bound is known).';
COMMENT ON COLUMN "reporting"."voucher_events"."observed_before" IS 'For an observed event: it happened before this time, UTC (the sync that saw it).';
COMMENT ON COLUMN "reporting"."voucher_events"."amount" IS 'issued: the face value; redeemed: the amount redeemed by this event (the rise of Cin7''s RedeemedAmount, CareCloud''s value); expired: the value left; else null.';
COMMENT ON COLUMN "reporting"."voucher_events"."run_id" IS 'The sync run (sync_runs.id) that recorded the event; null for the events read from the voucher itself.';

COMMENT ON VIEW "reporting"."voucher_daily" IS 'Daily facts per source and status, days in REPORTING_TIMEZONE (default UTC), amounts in the source''s currency. Stock columns (vouchers, open_balance) are as of the end of the day, from each voucher''s first version on (CareCloud dates it by last_change, Cin7 by the first sync that stored it); flows (issued, redeemed) are dated as their events.';
COMMENT ON COLUMN "reporting"."voucher_daily"."day" IS 'The day, in REPORTING_TIMEZONE.';
COMMENT ON COLUMN "reporting"."voucher_daily"."source" IS 'System the vouchers come from: ''carecloud'' or ''cin7''.';
COMMENT ON COLUMN "reporting"."voucher_daily"."status" IS 'Stock columns: the vouchers'' status at the end of the day. Flows: the status the event left the voucher in.';
COMMENT ON COLUMN "reporting"."voucher_daily"."issued_count" IS 'Vouchers issued that day (by the source''s creation time).';
COMMENT ON COLUMN "reporting"."voucher_daily"."issued_amount" IS 'Face value of the vouchers issued that day.';
COMMENT ON COLUMN "reporting"."voucher_daily"."redeemed_amount" IS 'Amount redeemed that day (see reporting.voucher_events for the precision of each redemption).';
COMMENT ON COLUMN "reporting"."voucher_daily"."vouchers" IS 'Vouchers in this status at the end of the day.';
COMMENT ON COLUMN "reporting"."voucher_daily"."open_balance" IS 'Value left on the vouchers in this status at the end of the day, not yet expired: the outstanding liability is the ''active'' row.';
