-- The daily facts are computed by the fold, not by the page (docs/design.md, "History"). Until now every statement
-- that changed vouchers also computed what each change adds to the daily facts and appended it, a row per 15-minute
-- bucket, source and status: about two rows per new voucher, and a quarter of a first load's time. Now it appends one
-- row naming the versions it opened (voucher_daily_pending); the fold, every minute and off the sync's path, reads
-- those versions and the ones they closed (the voucher's row, or voucher_versions) and adds them to the buckets and
-- days in one set-based statement. The versions are the record: nothing is lost in between, and a retention prune
-- keeps every version a pending entry still needs.

-- No page may change vouchers while the staged changes are folded and their table replaced.
LOCK TABLE "vouchers" IN SHARE ROW EXCLUSIVE MODE;
SELECT fold_voucher_daily_changes();

-- CreateTable: one row per statement that opened versions: the vouchers and the version each one opened.
CREATE TABLE "voucher_daily_pending" (
    "id" BIGSERIAL NOT NULL,
    "voucher_ids" BIGINT[] NOT NULL,
    "version_nos" INTEGER[] NOT NULL,
    "recorded_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "voucher_daily_pending_pkey" PRIMARY KEY ("id")
);

-- Everything below is written by hand.
ALTER TABLE "voucher_daily_pending" ADD CONSTRAINT "voucher_daily_pending_same_length"
    CHECK (cardinality("voucher_ids") = cardinality("version_nos"));

-- Records the changes of one statement: `news` as the rows are now, `olds` as they were (matched by id; null for a
-- statement that inserted them). Only rows that opened a version are passed (see the triggers). Writes the versions
-- the changes closed, the events only a change shows, and the versions opened, for the fold.
-- plpgsql rather than sql: its statement's plan is cached for the session, where a sql function's is made again at
-- every call. The plan is made once (force_generic_plan) and must stay right as the tables grow from empty during a
-- first load: with sequential scans off it reaches every table through an index, whatever the statistics said when
-- it was made.
CREATE OR REPLACE FUNCTION "voucher_history_record"(olds "voucher_state"[], news "voucher_state"[]) RETURNS void
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan SET enable_seqscan = off AS $fn$
BEGIN
WITH
-- The last reconciliation that succeeded read every voucher after it started: a change seen now happened after
-- that start (or after the previous version was stored, whichever is later). Not needed for new rows.
last_full AS (
  SELECT r.source, max(r.started_at) AS started_at
    FROM sync_runs r
   WHERE olds IS NOT NULL AND r.mode = 'full' AND r.status = 'succeeded'
   GROUP BY r.source
),
-- The fields of each change the events read, once (a field of a composite value is found again at every use).
t AS MATERIALIZED (
  SELECT n.id, n.source, n.source_id, n.redeemed_amount, n.is_deleted, n.last_run_id,
         n.version_from AS vfrom, n.version_from_basis, n.version_kind, n.status AS status_after,
         o.status AS status_before, o.id IS NULL AS fresh, o.redeemed_amount AS redeemed_before,
         CASE WHEN o.id IS NULL THEN n.source_created_at
              ELSE GREATEST(o.version_observed_at, (SELECT lf.started_at FROM last_full lf WHERE lf.source = n.source))
         END AS seen_after,
         n.applied_at IS NOT NULL AND (o.id IS NULL OR o.applied_at IS NULL) AS applied,
         COALESCE(n.redeemed_amount, 0) > COALESCE(o.redeemed_amount, 0) AS redeemed_more
    FROM unnest(news) AS n LEFT JOIN unnest(olds) AS o ON o.id = n.id
),
closed AS (
  INSERT INTO voucher_versions (voucher_id, version_no, source, source_id, kind, version_from, version_to,
         version_from_basis, observed_at, changed_fields, run_id, code, customer_id, status, amount, redeemed_amount,
         valid_from, valid_to, applied_at, source_created_at, source_modified_at, is_deleted, voucher_type, description,
         store_id, reward_id, reward_name)
  SELECT o.id, o.version_no, o.source, o.source_id, o.version_kind, o.version_from, t.vfrom, o.version_from_basis,
         o.version_observed_at, o.version_changed_fields, o.version_run_id, o.code, o.customer_id, o.status, o.amount,
         o.redeemed_amount, o.valid_from, o.valid_to, o.applied_at, o.source_created_at, o.source_modified_at,
         o.is_deleted, o.voucher_type, o.description, o.store_id, o.reward_id, o.reward_name
    FROM unnest(olds) AS o JOIN t ON t.id = o.id
),
-- The business events of each change. An observed event is dated when it was seen (observed_before), between the
-- bounds it is known to lie in. (issued, expired and CareCloud's exact redemptions are read from the row by the view.)
stored_events AS (
  INSERT INTO voucher_events (voucher_id, source, source_id, event, event_at, precision, observed_after,
         observed_before, amount, run_id, recorded_at)
  SELECT t.id, t.source, t.source_id, e.event, now(), 'observed', t.seen_after, now(), e.amount, t.last_run_id, now()
    FROM (SELECT * FROM t WHERE t.redeemed_more OR t.status_after = 'inactive' OR t.is_deleted
                                OR t.version_kind = 'restored') t
   CROSS JOIN LATERAL (VALUES
           -- a rise of Cin7's RedeemedAmount is only observed (CareCloud's applied_date is exact: not stored here)
           ('redeemed', t.redeemed_more AND NOT t.applied,
            COALESCE(t.redeemed_amount, 0) - COALESCE(t.redeemed_before, 0)),
           ('deactivated', t.status_after = 'inactive' AND (t.fresh OR t.status_before = 'active')
                           AND NOT (t.applied OR t.redeemed_more) AND t.version_from_basis = 'observed', NULL::decimal),
           ('deleted', t.version_kind = 'deleted' OR (t.fresh AND t.is_deleted), NULL::decimal),
           ('restored', t.version_kind = 'restored', NULL::decimal)
         ) AS e(event, happened, amount)
   WHERE e.happened
   UNION ALL
  -- a deactivation the source dated (last_change) is exact
  SELECT t.id, t.source, t.source_id, 'deactivated', t.vfrom, 'exact', NULL, NULL, NULL, t.last_run_id, now()
    FROM t
   WHERE t.status_after = 'inactive' AND (t.fresh OR t.status_before = 'active') AND NOT (t.applied OR t.redeemed_more)
     AND t.version_from_basis = 'source'
)
INSERT INTO voucher_daily_pending (voucher_ids, version_nos)
SELECT array_agg(n.id), array_agg(n.version_no) FROM unnest(news) AS n HAVING count(*) > 0;
END
$fn$;

-- What the pending versions add to the daily facts, per 15-minute bucket (UTC), source and status: each version
-- opened (`n`) with the one it closed (`o`, none for a voucher's first), as the voucher's row or voucher_versions hold
-- them. A version counts in its status from version_from until it closes; its open value counts from version_from
-- until it closes or its valid_to passes, whichever comes first: so a voucher's open value is booked to leave the
-- balance at valid_to, and that is undone when its version closes earlier. Issued vouchers are dated by the source's
-- creation time (the first load too), redemptions as their events: CareCloud's applied_date, else when the rise of
-- Cin7's RedeemedAmount was observed (the version's observed_at).
-- A function rather than a view: public holds the Prisma models' tables and nothing else. Stable: it reads in the
-- snapshot of the statement that calls it. Security definer, with its own search path: reporting.voucher_daily calls
-- it for the BI role, which may read no table of public (what it returns is what that view shows: sums per bucket).
CREATE FUNCTION "voucher_daily_pending_changes"()
RETURNS TABLE ("bucket" TIMESTAMPTZ, "source" VARCHAR(32), "status" VARCHAR(16), "vouchers" BIGINT,
               "open_balance" DECIMAL, "issued_count" BIGINT, "issued_amount" DECIMAL, "redeemed_amount" DECIMAL)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $view$
WITH opened AS (
  SELECT u.voucher_id, u.version_no
    FROM voucher_daily_pending p CROSS JOIN LATERAL unnest(p.voucher_ids, p.version_nos) AS u(voucher_id, version_no)
),
pair AS (
  SELECT CASE WHEN v.id IS NULL THEN h.source ELSE v.source END AS source,
         CASE WHEN v.id IS NULL THEN h.status ELSE v.status END AS status_after,
         CASE WHEN v.id IS NULL THEN h.amount ELSE v.amount END AS amount,
         CASE WHEN v.id IS NULL THEN h.redeemed_amount ELSE v.redeemed_amount END AS redeemed_amount,
         CASE WHEN v.id IS NULL THEN h.valid_to ELSE v.valid_to END AS valid_to,
         CASE WHEN v.id IS NULL THEN h.applied_at ELSE v.applied_at END AS applied_at,
         CASE WHEN v.id IS NULL THEN h.source_created_at ELSE v.source_created_at END AS source_created_at,
         CASE WHEN v.id IS NULL THEN h.version_from ELSE v.version_from END AS vfrom,
         CASE WHEN v.id IS NULL THEN h.observed_at ELSE v.version_observed_at END AS observed_at,
         x.version_no = 1 AS fresh,
         o.status AS status_before, o.amount AS amount_before, o.redeemed_amount AS redeemed_before,
         o.valid_to AS valid_to_before, o.applied_at AS applied_before
    FROM opened x
    LEFT JOIN vouchers v ON v.id = x.voucher_id AND v.version_no = x.version_no
    LEFT JOIN voucher_versions h ON v.id IS NULL AND h.voucher_id = x.voucher_id AND h.version_no = x.version_no
    LEFT JOIN voucher_versions o ON o.voucher_id = x.voucher_id AND o.version_no = x.version_no - 1
),
-- Materialized: each field of a pair is chosen once, not at every use below.
t AS MATERIALIZED (
  SELECT p.*,
         p.applied_at IS NOT NULL AND (p.fresh OR p.applied_before IS NULL) AS applied,
         COALESCE(p.redeemed_amount, 0) > COALESCE(p.redeemed_before, 0) AS redeemed_more,
         -- What each side leaves open: its remaining value while active (amount less what was redeemed; nothing once
         -- applied), else 0.
         CASE WHEN p.status_after <> 'active' OR (p.applied_at IS NOT NULL AND p.redeemed_amount IS NULL) THEN 0
              ELSE GREATEST(COALESCE(p.amount, 0) - COALESCE(p.redeemed_amount, 0), 0) END AS open_new,
         CASE WHEN p.fresh OR p.status_before <> 'active' OR (p.applied_before IS NOT NULL AND p.redeemed_before IS NULL)
              THEN 0 ELSE GREATEST(COALESCE(p.amount_before, 0) - COALESCE(p.redeemed_before, 0), 0) END AS open_old
    FROM pair p
),
delta AS (
  SELECT d.at, t.source, d.status, d.vouchers, d.open_balance, d.issued_count, d.issued_amount, d.redeemed_amount
    FROM t CROSS JOIN LATERAL (VALUES
      (true, t.vfrom, t.status_after, 1,
       CASE WHEN t.valid_to IS NULL OR t.valid_to > t.vfrom THEN t.open_new ELSE 0 END, 0, 0::decimal, 0::decimal),
      (t.valid_to > t.vfrom AND t.open_new <> 0, t.valid_to, t.status_after, 0, -t.open_new, 0, 0, 0),
      (NOT t.fresh, t.vfrom, t.status_before, -1,
       CASE WHEN t.valid_to_before IS NULL OR t.valid_to_before > t.vfrom THEN -t.open_old ELSE 0 END, 0, 0, 0),
      (NOT t.fresh AND t.valid_to_before > t.vfrom AND t.open_old <> 0, t.valid_to_before, t.status_before, 0,
       t.open_old, 0, 0, 0),
      (t.fresh, COALESCE(t.source_created_at, t.observed_at), t.status_after, 0, 0, 1, COALESCE(t.amount, 0), 0),
      (t.applied OR t.redeemed_more, CASE WHEN t.applied THEN t.applied_at ELSE t.observed_at END, t.status_after,
       0, 0, 0, 0,
       CASE WHEN t.redeemed_amount IS NOT NULL OR t.redeemed_before IS NOT NULL
            THEN COALESCE(t.redeemed_amount, 0) - COALESCE(t.redeemed_before, 0) ELSE COALESCE(t.amount, 0) END)
    ) AS d(included, at, status, vouchers, open_balance, issued_count, issued_amount, redeemed_amount)
   WHERE d.included
)
SELECT date_bin('15 minutes', delta.at, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket, delta.source, delta.status,
       sum(delta.vouchers)::BIGINT AS vouchers, sum(delta.open_balance) AS open_balance,
       sum(delta.issued_count)::BIGINT AS issued_count, sum(delta.issued_amount) AS issued_amount,
       sum(delta.redeemed_amount) AS redeemed_amount
  FROM delta
 GROUP BY 1, 2, 3;
$view$;

-- Moves the pending versions into the 15-minute buckets and the days of the reporting time zone; when
-- REPORTING_TIMEZONE changed since, the days are first cut again from the buckets. Entries a transaction commits
-- meanwhile are not in this statement's snapshot: they stay for the next time. One at a time (advisory lock).
-- Returns the versions folded.
-- The sums of a large fold (a backfill's minute) are kept in memory rather than spilled.
CREATE OR REPLACE FUNCTION "fold_voucher_daily_changes"() RETURNS BIGINT LANGUAGE plpgsql SET work_mem = '64MB' AS $$
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
  -- One statement, one snapshot: the entries deleted are the ones the view reads.
  WITH gone AS (DELETE FROM voucher_daily_pending RETURNING cardinality(voucher_ids) AS versions),
  changes AS MATERIALIZED (SELECT * FROM voucher_daily_pending_changes()),
  buckets AS (
    INSERT INTO voucher_daily_buckets AS b (bucket, source, status, vouchers, open_balance, issued_count,
           issued_amount, redeemed_amount)
    SELECT c.bucket, c.source, c.status, c.vouchers, c.open_balance, c.issued_count, c.issued_amount,
           c.redeemed_amount
      FROM changes c
    ON CONFLICT (bucket, source, status) DO UPDATE SET
           vouchers = b.vouchers + EXCLUDED.vouchers, open_balance = b.open_balance + EXCLUDED.open_balance,
           issued_count = b.issued_count + EXCLUDED.issued_count, issued_amount = b.issued_amount + EXCLUDED.issued_amount,
           redeemed_amount = b.redeemed_amount + EXCLUDED.redeemed_amount
  ),
  days AS (
    INSERT INTO voucher_daily_days AS d (day, source, status, vouchers, open_balance, issued_count, issued_amount,
           redeemed_amount)
    SELECT (c.bucket AT TIME ZONE zone)::DATE, c.source, c.status, sum(c.vouchers), sum(c.open_balance),
           sum(c.issued_count), sum(c.issued_amount), sum(c.redeemed_amount)
      FROM changes c GROUP BY 1, 2, 3
    ON CONFLICT (day, source, status) DO UPDATE SET
           vouchers = d.vouchers + EXCLUDED.vouchers, open_balance = d.open_balance + EXCLUDED.open_balance,
           issued_count = d.issued_count + EXCLUDED.issued_count, issued_amount = d.issued_amount + EXCLUDED.issued_amount,
           redeemed_amount = d.redeemed_amount + EXCLUDED.redeemed_amount
  )
  SELECT COALESCE(sum(gone.versions), 0) INTO moved FROM gone;
  RETURN moved;
END $$;

-- The folded days, and what the pending versions add (a minute's writes at most): the view's other parts are as
-- they were.
CREATE OR REPLACE VIEW "reporting"."voucher_daily" AS
WITH zone AS (
  SELECT COALESCE((SELECT s."days_timezone" FROM "reporting_settings" s), 'UTC') AS "name"
),
per_day AS (
  SELECT f."day", f."source", f."status", sum(f."vouchers") AS "vouchers", sum(f."open_balance") AS "open_balance",
         sum(f."issued_count") AS "issued_count", sum(f."issued_amount") AS "issued_amount",
         sum(f."redeemed_amount") AS "redeemed_amount"
    FROM (SELECT d."day", d."source", d."status", d."vouchers", d."open_balance", d."issued_count", d."issued_amount",
                 d."redeemed_amount"
            FROM "voucher_daily_days" d
          UNION ALL
          -- (typed as the folded days are: a function's result carries no length)
          SELECT (c."bucket" AT TIME ZONE z."name")::DATE, c."source"::VARCHAR(32), c."status"::VARCHAR(16),
                 c."vouchers", c."open_balance", c."issued_count", c."issued_amount", c."redeemed_amount"
            FROM "voucher_daily_pending_changes"() c CROSS JOIN zone z) f
   GROUP BY 1, 2, 3
),
series AS (
  SELECT f."source", f."status", d::DATE AS "day"
    FROM (SELECT p."source", p."status", min(p."day") AS "first_day" FROM per_day p GROUP BY 1, 2) f
   CROSS JOIN zone z
   CROSS JOIN LATERAL generate_series(f."first_day", GREATEST(f."first_day", (now() AT TIME ZONE z."name")::DATE),
                                      INTERVAL '1 day') AS d
),
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

DROP TABLE "voucher_daily_changes";
