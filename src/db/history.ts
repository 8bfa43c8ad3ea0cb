/**
 * The history's upkeep. The versions and events themselves are written by triggers on `vouchers`
 * (prisma/migrations/20261204000200_history, 20261205000000_daily_facts_folded), in the statement that changes a row,
 * with a note of the versions it opened; what is here runs beside them: the fold of those versions into the daily
 * facts, the reporting time zone the views read, and retention.
 */
import type { Db } from './client.ts';

/**
 * Stores the time zone reporting.voucher_daily cuts days in (a view cannot read REPORTING_TIMEZONE itself); when it
 * changed, the days are cut again at once (foldDailyChanges).
 */
export async function saveReportingTimezone(db: Db, timezone: string): Promise<void> {
  const changed = await db.$executeRawUnsafe(
    `UPDATE reporting_settings SET timezone = $1, updated_at = now() WHERE timezone IS DISTINCT FROM $1`,
    timezone,
  );
  if (changed > 0) await foldDailyChanges(db);
}

export interface PruneInput {
  /** Closed versions that ended before this instant go. */
  endedBefore: Date;
  /** Versions deleted per statement (each its own transaction, short). Default 5,000. */
  batchSize?: number;
  /** Stops between batches when aborted. */
  signal?: AbortSignal;
}

/**
 * Deletes closed versions that ended before `endedBefore`, in batches, never touching a current version (the
 * voucher's row), an event or the daily facts (they do not depend on the versions once folded). A voucher with versions
 * not yet folded keeps all of its versions until they are: the fold reads each version opened with the one it closed,
 * and a change the source dated long ago closes a version that "ended" long ago. Only one process prunes at a time: a
 * batch that finds another holding the lock returns at once. Returns the number of versions deleted.
 */
export async function pruneHistory(db: Db, input: PruneInput): Promise<number> {
  const batchSize = input.batchSize ?? 5000;
  let total = 0;
  for (;;) {
    if (input.signal?.aborted) return total;
    const [row] = await db.$queryRawUnsafe<{ locked: boolean; deleted: number }[]>(
      `WITH lock AS (SELECT pg_try_advisory_xact_lock(hashtext('voucher-sync'), hashtext('history-retention')) AS locked),
            doomed AS (SELECT h.voucher_id, h.version_no FROM voucher_versions h, lock
                        WHERE lock.locked AND h.version_to < $1::timestamptz
                          AND h.voucher_id NOT IN (SELECT unnest(p.voucher_ids) FROM voucher_daily_pending p)
                        ORDER BY h.version_to LIMIT $2::int),
            gone AS (DELETE FROM voucher_versions h USING doomed
                      WHERE h.voucher_id = doomed.voucher_id AND h.version_no = doomed.version_no RETURNING 1)
       SELECT (SELECT locked FROM lock) AS locked, (SELECT count(*) FROM gone)::int AS deleted`,
      input.endedBefore.toISOString(),
      batchSize,
    );
    if (!row?.locked) return total;
    total += row.deleted;
    if (row.deleted < batchSize) return total;
  }
}

/**
 * Adds the versions pages opened (voucher_daily_pending) to the buckets and days reporting.voucher_daily sums (see the
 * migrations), cutting the days again first if REPORTING_TIMEZONE changed. Safe beside writers and other folds.
 * Returns the number of versions folded.
 */
export async function foldDailyChanges(db: Db): Promise<number> {
  const [row] = await db.$queryRawUnsafe<{ moved: bigint }[]>('SELECT fold_voucher_daily_changes() AS moved');
  return Number(row?.moved ?? 0);
}
