/**
 * Whether the database can be read for a status report, checked before reading it. `npm run status` must never
 * create or migrate a database (it may run where the service's user cannot, or point at the wrong one), so a
 * missing database or missing tables get one line that says so and what to run, rather than a driver's error.
 */
import pg from 'pg';
import {
  appliedMigrationNames,
  DEFAULT_MIGRATIONS_DIR,
  hasServiceTables,
  onClient,
  readMigrations,
} from '../db/migrate.ts';
import { describeDatabaseUrl, hidePassword } from '../db/database-url.ts';

/** The database cannot be read as voucher-sync's: the message is one line naming it, never its password. */
export class DatabaseNotReadyError extends Error {
  override readonly name = 'DatabaseNotReadyError';
}

export async function checkDatabase(databaseUrl: string, migrationsDir = DEFAULT_MIGRATIONS_DIR): Promise<void> {
  const target = describeDatabaseUrl(databaseUrl);
  const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 10_000 });
  // A connection lost later must not crash the command: the query it breaks reports it.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => undefined);
    if ((error as { code?: string }).code === '3D000')
      throw new DatabaseNotReadyError(`database ${target} (DATABASE_URL) does not exist: run npm run db:migrate`);
    const reason = error instanceof Error ? error.message : String(error);
    throw new DatabaseNotReadyError(
      `cannot connect to ${target} (DATABASE_URL): ${hidePassword(reason, databaseUrl).split('\n')[0]}`,
    );
  }
  try {
    const query = onClient(client);
    if (!(await hasServiceTables(query)))
      throw new DatabaseNotReadyError(`database ${target} has no voucher-sync tables: run npm run db:migrate`);
    const done = new Set(await appliedMigrationNames(query));
    const pending = readMigrations(migrationsDir).filter((m) => !done.has(m.name));
    if (pending.length > 0)
      throw new DatabaseNotReadyError(
        `database ${target} lacks ${pending.length} migration(s) (${pending.map((m) => m.name).join(', ')}): run npm run db:migrate`,
      );
  } finally {
    await client.end().catch(() => undefined);
  }
}
