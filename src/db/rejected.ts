/**
 * The rejected records an operator reads and replays (`voucher-sync rejected list|replay`): their reads — never
 * their `raw` for display, since the record as the source sent it may hold a customer's e-mail address — and how a
 * replay marks each one (see "rejection / resolution" in src/types.ts). Rejections are written by the page writer
 * (src/db/write-page.ts), which also resolves them when a later valid version is stored.
 */
import type { Prisma } from '../generated/prisma/client.ts';
import { storableCopy, storableText, tryStringify } from './unstorable.ts';
import type { Db, Tx } from './client.ts';

export type Resolution = 'replayed' | 'superseded' | 'gone';

/** A rejected record as `rejected list` shows it: everything but the payload. */
export interface RejectedListRow {
  id: bigint;
  source: string;
  stream: string;
  sourceId: string | null;
  reason: string;
  timesSeen: number;
  firstRejectedAt: Date;
  lastRejectedAt: Date;
  runId: bigint | null;
  resolvedAt: Date | null;
  resolvedByRunId: bigint | null;
  resolution: string | null;
}

export interface RejectedFilter {
  source?: string;
  /** Only those not resolved. Default: all. */
  open?: boolean;
}

const whereOf = ({ source, open }: RejectedFilter): Prisma.RejectedRecordWhereInput => ({
  ...(source === undefined ? {} : { source }),
  ...(open ? { resolvedAt: null } : {}),
});

/** The newest `limit` rejected records that match, most recently rejected first, and how many match in all. */
export async function listRejected(
  db: Db,
  filter: RejectedFilter,
  limit: number,
): Promise<{ rows: RejectedListRow[]; total: number }> {
  const where = whereOf(filter);
  const [rows, total] = await Promise.all([
    db.rejectedRecord.findMany({
      where,
      orderBy: [{ lastRejectedAt: 'desc' }, { id: 'desc' }],
      take: limit,
      // Never `raw`.
      select: {
        id: true,
        source: true,
        stream: true,
        sourceId: true,
        reason: true,
        timesSeen: true,
        firstRejectedAt: true,
        lastRejectedAt: true,
        runId: true,
        resolvedAt: true,
        resolvedByRunId: true,
        resolution: true,
      },
    }),
    db.rejectedRecord.count({ where }),
  ]);
  return { rows, total };
}

/** A rejected record as a replay needs it: its payload is read to find the record again, never shown. */
export interface RejectedToReplay {
  id: bigint;
  source: string;
  stream: string;
  sourceId: string | null;
  raw: unknown;
}

/** The open rejected records of `source`, oldest first (at most `limit`); with `id`, that one if it is open. */
export function openToReplay(
  db: Db,
  selection: { source: string; id?: bigint; limit?: number },
): Promise<RejectedToReplay[]> {
  return db.rejectedRecord.findMany({
    where: { source: selection.source, resolvedAt: null, ...(selection.id === undefined ? {} : { id: selection.id }) },
    orderBy: { id: 'asc' },
    take: selection.limit,
    select: { id: true, source: true, stream: true, sourceId: true, raw: true },
  });
}

/** One rejected record by id, for `--id`: which source it is of and whether it is open. */
export function findRejected(db: Db, id: bigint) {
  return db.rejectedRecord.findUnique({
    where: { id },
    select: { id: true, source: true, resolvedAt: true, resolution: true, resolvedByRunId: true },
  });
}

/**
 * Marks rejected records resolved by run `runId` (`replayed` or `gone`). A record the same run's page write has
 * just marked `superseded` (the replayed record's own key) takes the replay's word; one resolved otherwise is left.
 */
export async function resolveRejected(tx: Tx, ids: bigint[], runId: bigint, resolution: Resolution): Promise<number> {
  if (ids.length === 0) return 0;
  return tx.$executeRaw`
    UPDATE rejected_records SET resolved_at = now(), resolved_by_run_id = ${runId}, resolution = ${resolution}
     WHERE id = ANY(${ids.map(String)}::bigint[])
       AND (resolved_at IS NULL OR (resolved_by_run_id = ${runId} AND resolution = 'superseded'))`;
}

/**
 * A rejected record read again and rejected again: it stays open with the new reason, seen once more, by run
 * `runId`. It takes the payload as read now, unless another rejected record of its stream holds that payload
 * already (rows are unique per payload) or the payload cannot be written at all; then it keeps the one it had.
 */
export async function rejectAgain(tx: Tx, id: bigint, runId: bigint, reason: string, raw: unknown): Promise<void> {
  const json = tryStringify(storableCopy(raw ?? null));
  await tx.$executeRaw`
    WITH incoming AS (
      SELECT j AS raw, h AS hash,
             j IS NULL OR EXISTS (SELECT 1 FROM rejected_records me JOIN rejected_records o
                                     ON o.source = me.source AND o.stream = me.stream AND o.raw_hash = h AND o.id <> me.id
                                  WHERE me.id = ${id}) AS keep
        FROM (SELECT ${json}::jsonb AS j) s
       CROSS JOIN LATERAL (SELECT sha256(convert_to(s.j::text, 'UTF8')) AS h) d
    )
    UPDATE rejected_records t SET
           reason = ${storableText(reason)},
           last_rejected_at = now(),
           times_seen = t.times_seen + 1,
           run_id = ${runId},
           raw = CASE WHEN i.keep THEN t.raw ELSE i.raw END,
           raw_hash = CASE WHEN i.keep THEN t.raw_hash ELSE i.hash END
      FROM incoming i
     WHERE t.id = ${id}`;
}

/** The rejected record of the stream that holds this payload (as the writer stores it), if any. */
export async function rejectionOfPayload(
  tx: Tx,
  scope: { source: string; stream: string },
  raw: unknown,
): Promise<{ id: bigint; reason: string } | null> {
  const json = tryStringify(storableCopy(raw ?? null));
  if (json === null) return null;
  const rows = await tx.$queryRaw<{ id: bigint; reason: string }[]>`
    SELECT id, reason FROM rejected_records
     WHERE source = ${scope.source} AND stream = ${scope.stream}
       AND raw_hash = sha256(convert_to(${json}::jsonb::text, 'UTF8'))`;
  return rows[0] ?? null;
}

/** Removes a rejected record (the writer's copy of one a replay folds into the record it replays). */
export async function deleteRejected(tx: Tx, id: bigint): Promise<void> {
  await tx.rejectedRecord.delete({ where: { id } });
}
