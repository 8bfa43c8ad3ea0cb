/**
 * Counts the runs a job attempt finished into the process's metrics, from the ledger rather than from what runSync
 * returned: a run that failed or was interrupted throws, yet its committed pages are in its ledger row, and the
 * metrics must agree with the ledger. One small query per job attempt, never per page.
 */
import type { Db } from '../db/client.ts';
import { runsEndedByAttempt } from '../db/ledger.ts';
import { observeRun } from './registry.ts';

export interface JobAttempt {
  source: string;
  jobId: string | undefined;
  /** When the attempt started, before it took the source's lock. */
  since: Date;
}

/**
 * Call while still holding the source's lock. The attempt's own runs are those of its job started since; the runs it
 * marked abandoned (left running by a worker that died) are those abandoned since that had started before: only the
 * lock holder abandons runs, so no other process counts them. A run of this attempt that another process marked
 * abandoned (the lock was lost) is left to that process. A row that ended `waiting` is counted now, as `interrupted`:
 * that is what the next run of its source makes of it (closeWaiting in src/db/ledger.ts), and no more pages commit
 * to it.
 */
export async function observeFinishedRuns(db: Db, attempt: JobAttempt): Promise<number> {
  const { source } = attempt;
  const rows = await runsEndedByAttempt(db, attempt);
  for (const row of rows) {
    const finished = row.finishedAt ?? row.startedAt;
    observeRun({
      source,
      mode: row.mode,
      status: row.status === 'waiting' ? 'interrupted' : row.status,
      durationSeconds: (finished.getTime() - row.startedAt.getTime()) / 1000,
      counters: row,
    });
  }
  return rows.length;
}
