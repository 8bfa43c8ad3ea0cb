/**
 * Reconciliation's bookkeeping: a full scan records every key it sees in scan_seen; what it did not see,
 * once the absence is confirmed, is marked deleted.
 */
import type { Db, Tx } from './client.ts';

export interface MarkVanishedInput {
  source: string;
  /** source_ids whose absence from the source is confirmed. */
  sourceIds: string[];
  runId: bigint;
  /**
   * The full scan that found them missing. When given, a key that scan has recorded in scan_seen after all
   * (a page that shifted, a confirmation that found it) is left alone. Default: none.
   */
  scanId?: bigint;
}

/**
 * Soft-deletes vouchers that vanished from their source: is_deleted, status 'deleted', deleted_at.
 * Rows already deleted keep their deleted_at and are not counted.
 * @returns how many rows were marked deleted.
 */
export async function markVanished(db: Db | Tx, input: MarkVanishedInput): Promise<number> {
  if (input.sourceIds.length === 0) return 0;
  return db.$executeRawUnsafe(
    `UPDATE vouchers AS v
        SET is_deleted = true, status = 'deleted', deleted_at = COALESCE(v.deleted_at, now()),
            last_synced_at = now(), last_run_id = $3::bigint
      WHERE v.source = $1
        AND v.source_id IN (SELECT jsonb_array_elements_text($2::jsonb))
        AND NOT v.is_deleted
        AND ($4::bigint IS NULL
             OR NOT EXISTS (SELECT 1 FROM scan_seen s WHERE s.scan_id = $4::bigint AND s.source_id = v.source_id))`,
    input.source,
    JSON.stringify(input.sourceIds),
    input.runId.toString(),
    input.scanId === undefined ? null : input.scanId.toString(),
  );
}

export interface ListUnseenInput {
  source: string;
  scanId: bigint;
  /** Vouchers first stored after this instant may simply have been created after the scan passed them. */
  scanStartedAt: Date;
  limit: number;
}

/**
 * Candidates for deletion after a full scan: the source's live vouchers that the scan did not record in
 * scan_seen and that were already stored when it started. In source_id order, at most `limit`.
 */
export async function listUnseen(db: Db | Tx, input: ListUnseenInput): Promise<string[]> {
  const rows = await db.$queryRawUnsafe<{ source_id: string }[]>(
    `SELECT v.source_id
       FROM vouchers v
      WHERE v.source = $1
        AND NOT v.is_deleted
        AND v.first_seen_at < $3::timestamptz
        AND NOT EXISTS (SELECT 1 FROM scan_seen s WHERE s.scan_id = $2::bigint AND s.source_id = v.source_id)
      ORDER BY v.source_id
      LIMIT $4::int`,
    input.source,
    input.scanId.toString(),
    input.scanStartedAt.toISOString(),
    input.limit,
  );
  return rows.map((r) => r.source_id);
}

/** Forgets the keys a scan recorded in scan_seen (when the scan is finished or abandoned). Returns how many. */
export async function clearScan(db: Db | Tx, scanId: bigint): Promise<number> {
  return db.$executeRawUnsafe('DELETE FROM scan_seen WHERE scan_id = $1::bigint', scanId.toString());
}

/** Distinct keys a full scan has stored so far (its scan_seen rows). */
export async function countScanSeen(db: Db | Tx, scanId: bigint): Promise<number> {
  return db.scanSeen.count({ where: { scanId } });
}
