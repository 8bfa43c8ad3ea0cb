/**
 * Applies prisma/migrations the way `prisma migrate deploy` does, without Prisma's schema engine (a native
 * binary the CLI downloads, which locked-down hosts cannot fetch). Hand-written rather than a migration
 * library because the point is to stay interchangeable with Prisma: same lock, same `_prisma_migrations`
 * table, same rows and checksums, so `prisma migrate deploy/status` on a connected machine agrees with us.
 */
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import type { Logger } from '../logger.ts';
import { atPackageRoot } from '../package-root.ts';
import { databaseName, describeDatabaseUrl, hidePassword, withDatabase } from './database-url.ts';

/** The key `prisma migrate` locks with (pg_advisory_lock), so that it and we never migrate at once. */
export const PRISMA_MIGRATE_LOCK_KEY = 72707369;

export const DEFAULT_MIGRATIONS_DIR = atPackageRoot('prisma', 'migrations');

/** A migration cannot be applied, or the recorded history disagrees with the files. */
export class MigrationError extends Error {
  override readonly name = 'MigrationError';
}

export interface MigrateOptions {
  logger: Logger;
  /** Folder of `<timestamp>_<name>/migration.sql` folders. Default: this repository's prisma/migrations. */
  migrationsDir?: string;
  /** How long to wait for another process that holds the migrate lock. Default: 120000 (2 minutes). */
  lockTimeoutMs?: number;
  /**
   * Create the database when it does not exist (`db:migrate --create`, the demo, the tests). Default false: a
   * missing database is refused with one line naming DATABASE_URL, so that a typo in it cannot silently start a
   * first backfill into a new, empty database.
   */
  create?: boolean;
}

export interface MigrationFile {
  name: string;
  script: string;
  checksum: string;
}

interface MigrationRecord {
  migration_name: string;
  checksum: string;
  finished_at: Date | null;
  rolled_back_at: Date | null;
  started_at: Date;
  logs: string | null;
}

// Exactly the statement of Prisma's schema engine (sql-schema-connector, postgres flavour).
const CREATE_MIGRATIONS_TABLE = `
CREATE TABLE _prisma_migrations (
    id                      VARCHAR(36) PRIMARY KEY NOT NULL,
    checksum                VARCHAR(64) NOT NULL,
    finished_at             TIMESTAMPTZ,
    migration_name          VARCHAR(255) NOT NULL,
    logs                    TEXT,
    rolled_back_at          TIMESTAMPTZ,
    started_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    applied_steps_count     INTEGER NOT NULL DEFAULT 0
);`;

/**
 * Applies the pending migrations, each in its own transaction (creating the database first with `create`).
 * Safe to run from several processes at once: they queue on Prisma's advisory lock.
 * @returns the names of the migrations applied by this call, in order (empty when up to date).
 */
export async function migrate(databaseUrl: string, options: MigrateOptions): Promise<string[]> {
  const { logger, migrationsDir = DEFAULT_MIGRATIONS_DIR, lockTimeoutMs = 120_000 } = options;
  const migrations = readMigrations(migrationsDir);
  const target = describeDatabaseUrl(databaseUrl);
  const client = await connectToDatabase(databaseUrl, logger, options.create ?? false);
  try {
    await lock(client, lockTimeoutMs, target);
    await ensureMigrationsTable(client, target);
    const records = await readRecords(onClient(client));
    checkHistory(records, migrations);
    const applied = new Set(records.filter((r) => r.rolled_back_at === null).map((r) => r.migration_name));
    const unknown = [...applied].filter((name) => !migrations.some((m) => m.name === name));
    if (unknown.length > 0)
      logger.warn({ migrations: unknown, database: target }, 'applied migrations missing from the migrations folder');
    const pending = migrations.filter((m) => !applied.has(m.name));
    for (const migration of pending) {
      await applyMigration(client, migration, databaseUrl, logger);
      logger.info({ migration: migration.name, database: target }, 'migration applied');
    }
    return pending.map((m) => m.name);
  } finally {
    // Ending the session releases the advisory lock as well; errors here would hide the real one.
    await client.end().catch(() => undefined);
  }
}

/** The migration folders in name order (Prisma's order), with their scripts and Prisma checksums. */
export function readMigrations(migrationsDir: string): MigrationFile[] {
  const lockFile = join(migrationsDir, 'migration_lock.toml');
  if (existsSync(lockFile)) {
    const provider = /^\s*provider\s*=\s*"([^"]*)"/m.exec(readFileSync(lockFile, 'utf8'))?.[1];
    if (provider !== undefined && provider !== 'postgresql') {
      throw new MigrationError(`${lockFile} is for provider "${provider}", not "postgresql"`);
    }
  }
  const names = readdirSync(migrationsDir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return names.map((name) => {
    const file = join(migrationsDir, name, 'migration.sql');
    if (!existsSync(file)) throw new MigrationError(`Migration ${name} has no migration.sql (${file})`);
    const bytes = readFileSync(file);
    return { name, script: bytes.toString('utf8'), checksum: sha256Hex(bytes) };
  });
}

/**
 * Prisma's comparison (schema-engine checksum.rs): the file as is, or with its line endings converted
 * either way (git may rewrite them), against the recorded hex; very old Prisma versions recorded the hex
 * without zero padding.
 */
export function checksumMatches(script: string, recorded: string): boolean {
  const variants = [script, script.replaceAll('\r\n', '\n'), script.replaceAll('\n', '\r\n')];
  return variants.some((variant) => {
    const digest = createHash('sha256').update(variant, 'utf8').digest();
    const hex = recorded.length !== 64 && recorded !== '' ? unpaddedHex(digest) : digest.toString('hex');
    return hex === recorded;
  });
}

function sha256Hex(bytes: Buffer | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function unpaddedHex(digest: Buffer): string {
  return [...digest].map((byte) => byte.toString(16)).join('');
}

async function connectToDatabase(databaseUrl: string, logger: Logger, create: boolean): Promise<pg.Client> {
  try {
    return await connect(databaseUrl);
  } catch (error) {
    if ((error as { code?: string }).code !== '3D000') throw connectionError(error, databaseUrl);
  }
  if (!create)
    throw new MigrationError(
      `database ${databaseName(databaseUrl)} does not exist (DATABASE_URL points at ${describeDatabaseUrl(databaseUrl)}): ` +
        'check DATABASE_URL, or create it with `npm run db:migrate -- --create`',
    );
  await createDatabase(databaseUrl, logger);
  try {
    return await connect(databaseUrl);
  } catch (error) {
    throw connectionError(error, databaseUrl);
  }
}

async function connect(databaseUrl: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: databaseUrl });
  // A failed connect leaves an error listener-less client; a later socket error must not crash the process.
  client.on('error', () => undefined);
  try {
    await client.connect();
    return client;
  } catch (error) {
    await client.end().catch(() => undefined);
    throw error;
  }
}

async function createDatabase(databaseUrl: string, logger: Logger): Promise<void> {
  const name = databaseName(databaseUrl);
  const admin = await connect(withDatabase(databaseUrl, 'postgres')).catch((error: unknown) => {
    throw connectionError(error, databaseUrl, `the "postgres" database (to create the missing database ${name})`);
  });
  try {
    await admin.query(`CREATE DATABASE ${quoteIdentifier(name)}`);
    logger.info({ database: describeDatabaseUrl(databaseUrl) }, 'database created');
  } catch (error) {
    // Another process created it between our connect and our CREATE: what we wanted.
    const code = (error as { code?: string }).code;
    if (code !== '42P04' && code !== '23505') {
      throw new MigrationError(`Cannot create database ${name}: ${hidePassword(messageOf(error), databaseUrl)}`, {
        cause: error,
      });
    }
  } finally {
    await admin.end().catch(() => undefined);
  }
}

async function lock(client: pg.Client, timeoutMs: number, target: string): Promise<void> {
  await client.query(`SET lock_timeout = ${Math.max(1, Math.round(timeoutMs))}`);
  try {
    await client.query('SELECT pg_advisory_lock($1)', [PRISMA_MIGRATE_LOCK_KEY]);
  } catch (error) {
    if ((error as { code?: string }).code !== '55P03') throw error;
    throw new MigrationError(
      `Another migration (this service or prisma migrate) has held the lock on ${target} for more than ${timeoutMs} ms; try again later`,
      { cause: error },
    );
  }
  await client.query('RESET lock_timeout');
}

async function ensureMigrationsTable(client: pg.Client, target: string): Promise<void> {
  const { rows } = await client.query<{ table_name: string }>(
    `SELECT c.relname AS table_name FROM pg_class c
      WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')`,
  );
  const tables = rows.map((r) => r.table_name);
  if (tables.includes('_prisma_migrations')) return;
  // Prisma refuses too (P3005): tables it did not create would make the first migration collide with them.
  const foreign = tables.filter((t) => t !== 'spatial_ref_sys');
  if (foreign.length > 0) {
    throw new MigrationError(
      `${target} already has tables (${foreign.slice(0, 5).join(', ')}) but no _prisma_migrations history; ` +
        'baseline it with `prisma migrate resolve --applied <migration>` or use an empty database',
    );
  }
  await client.query(CREATE_MIGRATIONS_TABLE);
}

/** Runs one statement and returns its rows: largeQueries (./client.ts) on the service's database, or onClient. */
export type RunQuery = <T>(text: string, values: unknown[]) => Promise<T[]>;

/** The statements of a plain pg client (one that no Prisma client wraps), as a RunQuery. */
export function onClient(client: pg.Client): RunQuery {
  return async <T>(text: string, values: unknown[]) => (await client.query(text, values)).rows as T[];
}

async function readRecords(query: RunQuery): Promise<MigrationRecord[]> {
  return query<MigrationRecord>(
    `SELECT migration_name, checksum, finished_at, rolled_back_at, started_at, logs
       FROM _prisma_migrations ORDER BY started_at`,
    [],
  );
}

/**
 * The migrations applied to the database: finished, and not rolled back. Throws the driver's error 42P01 where
 * the database has no `_prisma_migrations` table, which no migration has touched.
 */
export async function appliedMigrationNames(query: RunQuery): Promise<string[]> {
  const records = await readRecords(query);
  return records.filter((r) => r.finished_at !== null && r.rolled_back_at === null).map((r) => r.migration_name);
}

/** Whether the database holds voucher-sync's tables at all: the migrations' history and the run ledger. */
export async function hasServiceTables(query: RunQuery): Promise<boolean> {
  const [row] = await query<{ ready: boolean }>(
    "SELECT to_regclass('_prisma_migrations') IS NOT NULL AND to_regclass('sync_runs') IS NOT NULL AS ready",
    [],
  );
  return row?.ready === true;
}

/** Refuses, as Prisma does, to go on over a failed migration, and (stricter) over an edited one. */
function checkHistory(records: MigrationRecord[], migrations: MigrationFile[]): void {
  const failed = records.filter((r) => r.finished_at === null && r.rolled_back_at === null);
  if (failed.length > 0) {
    const details = failed.map(
      (r) => `${r.migration_name} (started ${r.started_at.toISOString()})${r.logs ? `: ${r.logs.trim()}` : ''}`,
    );
    throw new MigrationError(
      `Migration ${failed.map((r) => r.migration_name).join(', ')} failed earlier and blocks new migrations: ${details.join('; ')}. ` +
        'Fix the database, then mark it with `prisma migrate resolve --rolled-back <name>` (or --applied).',
    );
  }
  const files = new Map(migrations.map((m) => [m.name, m]));
  for (const record of records) {
    if (record.rolled_back_at !== null) continue;
    const file = files.get(record.migration_name);
    if (file && !checksumMatches(file.script, record.checksum)) {
      throw new MigrationError(
        `Migration ${record.migration_name} was edited after it was applied: its migration.sql has checksum ${file.checksum}, ` +
          `the database recorded ${record.checksum}. Restore the file and put the change in a new migration.`,
      );
    }
  }
}

async function applyMigration(
  client: pg.Client,
  migration: MigrationFile,
  databaseUrl: string,
  logger: Logger,
): Promise<void> {
  const id = randomUUID();
  const startedAt = new Date();
  try {
    await client.query('BEGIN');
    await client.query(migration.script);
    // Recorded in the same transaction as the script: no state where one is committed without the other.
    await client.query(
      `INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at, applied_steps_count)
       VALUES ($1, $2, clock_timestamp(), $3, NULL, NULL, $4, 1)`,
      [id, migration.checksum, migration.name, startedAt],
    );
    await client.query('COMMIT');
  } catch (error) {
    // A failed ROLLBACK means the connection is gone, which the record below will report.
    await client.query('ROLLBACK').catch(() => undefined);
    const logs = hidePassword(prismaStyleLogs(error), databaseUrl);
    // The row Prisma leaves after a failure: started, not finished, its error in logs. It blocks later runs.
    await client
      .query(
        `INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at, applied_steps_count)
         VALUES ($1, $2, NULL, $3, $4, NULL, $5, 0)`,
        [id, migration.checksum, migration.name, logs, startedAt],
      )
      .catch((recordError: unknown) => {
        logger.error(
          { migration: migration.name, error: hidePassword(messageOf(recordError), databaseUrl) },
          'could not record the failed migration',
        );
      });
    throw new MigrationError(`Migration ${migration.name} failed: ${hidePassword(messageOf(error), databaseUrl)}`, {
      cause: error,
    });
  }
}

function prismaStyleLogs(error: unknown): string {
  if (error instanceof pg.DatabaseError) {
    const position = error.position ? `\n\nPosition: ${error.position}` : '';
    const detail = error.detail ? `\nDETAIL: ${error.detail}` : '';
    return `Database error code: ${error.code}\n\nDatabase error:\nERROR: ${error.message}${detail}${position}`;
  }
  return messageOf(error);
}

function connectionError(error: unknown, databaseUrl: string, what = describeDatabaseUrl(databaseUrl)): MigrationError {
  return new MigrationError(`Cannot connect to ${what}: ${hidePassword(messageOf(error), databaseUrl)}`, {
    cause: error,
  });
}

function messageOf(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) return error.errors.map(messageOf).join('; ');
  return error instanceof Error ? error.message || error.name : String(error);
}

function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
