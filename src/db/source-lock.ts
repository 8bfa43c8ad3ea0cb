/**
 * One main run per source at a time, whatever the queue does: a Postgres session-level advisory lock held on a
 * dedicated connection for the whole run. A side run (a customer run: see "main run / side run" in src/types.ts)
 * takes a lock of another kind, so that it goes beside the main run while two of its own kind never overlap. If the process dies, its connection closes and the lock is
 * released at once — a dead worker never blocks its source.
 *
 * The other way round matters as much: when that connection dies under a live run (PostgreSQL restarted,
 * the backend terminated), the server has released the lock and another worker may take the source. The
 * lock says so through `lost`; the run stops after its current page. A page that still commits late is
 * fenced off by the ledger (see recordPage in src/sync/ledger.ts): the next run marks this one abandoned
 * before it starts, and an abandoned run can no longer write.
 */
import pg from 'pg';
import { AbortedError } from '../errors.ts';

export class SourceBusyError extends Error {
  override readonly name = 'SourceBusyError';
}

export interface SourceLock {
  /** Aborted, with an AbortedError as its reason, when the lock's connection is lost before release(). */
  readonly lost: AbortSignal;
  release(): Promise<void>;
}

/** Whose lock: the source's main runs' (`main`), its customer runs' (`customer`) or its replays' (`replay`). */
export type LockKind = 'main' | 'customer' | 'replay';

/** The advisory lock's first key per kind; the second is the source's name. `main` keeps the key it always had. */
const LOCK_CLASS: Record<LockKind, string> = {
  main: 'voucher-sync',
  customer: 'voucher-sync customer',
  replay: 'voucher-sync replay',
};

/** Keepalive probes start after this much silence, so a connection cut without a reset is noticed too. */
const KEEPALIVE_DELAY_MS = 10_000;

/** Takes the lock of `kind` for `source` or throws SourceBusyError when another run holds it. */
export async function acquireSourceLock(
  databaseUrl: string,
  source: string,
  kind: LockKind = 'main',
): Promise<SourceLock> {
  const lockClass = LOCK_CLASS[kind];
  const client = new pg.Client({
    connectionString: databaseUrl,
    application_name: kind === 'main' ? `voucher-sync lock ${source}` : `voucher-sync ${kind} lock ${source}`,
    keepAlive: true,
    keepAliveInitialDelayMillis: KEEPALIVE_DELAY_MS,
  });
  const controller = new AbortController();
  let releasing = false;
  const lose = (cause?: unknown) => {
    if (releasing || controller.signal.aborted) return;
    controller.abort(
      new AbortedError(
        `the lock on ${source} was lost with its database connection; stopping so that no other run of ${source} overlaps this one`,
        { cause },
      ),
    );
  };
  // Never let the lock connection's error crash the process: it is reported through `lost` instead.
  client.on('error', lose);
  client.on('end', () => lose());
  await client.connect();
  try {
    const { rows } = await client.query<{ locked: boolean }>(
      'SELECT pg_try_advisory_lock(hashtext($2), hashtext($1)) AS locked',
      [source, lockClass],
    );
    if (!rows[0]?.locked)
      throw new SourceBusyError(`a ${kind === 'main' ? '' : `${kind} `}run of ${source} is already under way`);
  } catch (error) {
    releasing = true;
    await client.end().catch(() => undefined);
    throw error;
  }
  return {
    lost: controller.signal,
    async release() {
      releasing = true;
      // Closing the session releases its advisory locks; the explicit unlock is for a pooled server.
      await client
        .query('SELECT pg_advisory_unlock(hashtext($2), hashtext($1))', [source, lockClass])
        .catch(() => undefined);
      await client.end().catch(() => undefined);
    },
  };
}
