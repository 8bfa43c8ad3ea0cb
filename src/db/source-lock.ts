/**
 * One run per source at a time, whatever the queue does: a Postgres session-level advisory lock held on a
 * dedicated connection for the whole run. If the process dies, its connection closes and the lock is
 * released at once — a dead worker never blocks its source.
 */
import pg from 'pg';

export class SourceBusyError extends Error {
  override readonly name = 'SourceBusyError';
}

export interface SourceLock {
  release(): Promise<void>;
}

/** Takes the lock for `source` or throws SourceBusyError when another run holds it. */
export async function acquireSourceLock(databaseUrl: string, source: string): Promise<SourceLock> {
  const client = new pg.Client({ connectionString: databaseUrl, application_name: `voucher-sync lock ${source}` });
  // A lock connection that errors out (server restart) must not crash the process; the run's own
  // queries will fail and the job will retry.
  client.on('error', () => undefined);
  await client.connect();
  try {
    const { rows } = await client.query<{ locked: boolean }>("SELECT pg_try_advisory_lock(hashtext('voucher-sync'), hashtext($1)) AS locked", [source]);
    if (!rows[0]?.locked) throw new SourceBusyError(`a run of ${source} is already under way`);
  } catch (error) {
    await client.end().catch(() => undefined);
    throw error;
  }
  return {
    async release() {
      await client.query("SELECT pg_advisory_unlock(hashtext('voucher-sync'), hashtext($1))", [source]).catch(() => undefined);
      await client.end().catch(() => undefined);
    },
  };
}
