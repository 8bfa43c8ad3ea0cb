/**
 * The ledger as `voucher-sync runs` lists it: the newest rows (the last made) of one source or of all, read backwards
 * along the primary key, so a ledger of a year of runs costs no more to list than a young one.
 */
import type { Db } from './client.ts';

export interface ListedRun {
  id: bigint;
  /** The logical run this row belongs to (its first row): equal to `id` for a run in one piece. */
  logicalRunId: bigint;
  source: string;
  stream: string;
  mode: string;
  status: string;
  startedAt: Date;
  finishedAt: Date | null;
  heartbeatAt: Date;
  fetched: number;
  inserted: number;
  updated: number;
  deleted: number;
  rejected: number;
  apiCalls: number;
  error: string | null;
}

/** The newest `limit` rows, newest first; of one source when `source` is given. */
export async function listRuns(db: Db, filter: { source?: string; limit: number }): Promise<ListedRun[]> {
  const rows = await db.syncRun.findMany({
    where: filter.source === undefined ? {} : { source: filter.source },
    orderBy: { id: 'desc' },
    take: filter.limit,
    select: {
      id: true,
      logicalRunId: true,
      source: true,
      stream: true,
      mode: true,
      status: true,
      startedAt: true,
      finishedAt: true,
      heartbeatAt: true,
      fetched: true,
      inserted: true,
      updated: true,
      deleted: true,
      rejected: true,
      apiCalls: true,
      error: true,
    },
  });
  return rows.map((row) => ({ ...row, logicalRunId: row.logicalRunId ?? row.id }));
}
