import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  DEFAULT_MIGRATIONS_DIR,
  PRISMA_MIGRATE_LOCK_KEY,
  MigrationError,
  checksumMatches,
  migrate,
} from '../../src/db/migrate.ts';
import { createLogger } from '../../src/logger.ts';
import { dropTestDatabase, uniqueDatabaseUrl } from '../helpers/db.ts';

const logger = createLogger('silent');
const INIT = '20261122000000_init';
/** Every migration of the repository, in the order they apply. */
const ALL = readdirSync(DEFAULT_MIGRATIONS_DIR, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name)
  .sort();
const initFile = join(DEFAULT_MIGRATIONS_DIR, INIT, 'migration.sql');

const created: string[] = [];
const tempDirs: string[] = [];

function freshDatabase(): string {
  const { name, url } = uniqueDatabaseUrl('migrate');
  created.push(name);
  return url;
}

/** A migrations folder holding our init migration plus the given extra migrations. */
function migrationsWith(extra: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'migrations-'));
  tempDirs.push(dir);
  cpSync(DEFAULT_MIGRATIONS_DIR, dir, { recursive: true });
  for (const [name, sql] of Object.entries(extra)) {
    mkdirSync(join(dir, name));
    writeFileSync(join(dir, name, 'migration.sql'), sql);
  }
  return dir;
}

async function query<T extends pg.QueryResultRow>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

interface HistoryRow {
  id: string;
  checksum: string;
  finished_at: Date | null;
  migration_name: string;
  logs: string | null;
  rolled_back_at: Date | null;
  started_at: Date;
  applied_steps_count: number;
}

const history = (url: string) => query<HistoryRow>(url, 'SELECT * FROM _prisma_migrations ORDER BY started_at');

afterEach(() => {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

afterAll(async () => {
  for (const name of created) await dropTestDatabase(name);
});

describe('migrate', () => {
  it('refuses a missing database unless asked to create it, and creates nothing', async () => {
    const url = freshDatabase();
    await expect(migrate(url, { logger })).rejects.toThrow(/does not exist .*check DATABASE_URL/);
    await expect(query(url, 'SELECT 1')).rejects.toThrow(/does not exist/);
  });

  it('creates a missing database and applies every migration, then has nothing left to apply', async () => {
    const url = freshDatabase();
    expect(await migrate(url, { logger, create: true })).toEqual(ALL);
    const tables = await query<{ name: string }>(
      url,
      `SELECT table_schema || '.' || table_name AS name FROM information_schema.tables
      WHERE table_schema IN ('public', 'reporting') ORDER BY 1`,
    );
    expect(tables.map((t) => t.name)).toEqual([
      'public._prisma_migrations',
      'public.installation',
      'public.rejected_records',
      'public.reporting_settings',
      'public.scan_seen',
      'public.source_controls',
      'public.sync_runs',
      'public.sync_state',
      'public.voucher_daily_buckets',
      'public.voucher_daily_days',
      'public.voucher_daily_pending',
      'public.voucher_events',
      'public.voucher_versions',
      'public.vouchers',
      'reporting.sync_status',
      'reporting.voucher_daily',
      'reporting.voucher_events',
      'reporting.voucher_history',
      'reporting.vouchers',
    ]);
    expect(await migrate(url, { logger, create: true })).toEqual([]);
    expect(await history(url)).toHaveLength(ALL.length);
  });

  it('records each migration as Prisma does: uuid, sha256 of the file, finished, one step, no logs', async () => {
    const url = freshDatabase();
    await migrate(url, { logger, create: true });
    const [row] = await history(url);
    expect(row).toMatchObject({
      migration_name: INIT,
      checksum: createHash('sha256').update(readFileSync(initFile)).digest('hex'),
      logs: null,
      rolled_back_at: null,
      applied_steps_count: 1,
    });
    expect(row?.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(row?.finished_at).toBeInstanceOf(Date);
    expect(row!.finished_at!.getTime()).toBeGreaterThanOrEqual(row!.started_at.getTime());
  });

  it('creates _prisma_migrations with the columns, types and defaults of Prisma', async () => {
    const url = freshDatabase();
    await migrate(url, { logger, create: true });
    const columns = await query(
      url,
      `SELECT column_name, data_type, character_maximum_length AS length, is_nullable, column_default
         FROM information_schema.columns WHERE table_name = '_prisma_migrations' ORDER BY ordinal_position`,
    );
    const tz = 'timestamp with time zone';
    expect(columns).toEqual([
      { column_name: 'id', data_type: 'character varying', length: 36, is_nullable: 'NO', column_default: null },
      { column_name: 'checksum', data_type: 'character varying', length: 64, is_nullable: 'NO', column_default: null },
      { column_name: 'finished_at', data_type: tz, length: null, is_nullable: 'YES', column_default: null },
      {
        column_name: 'migration_name',
        data_type: 'character varying',
        length: 255,
        is_nullable: 'NO',
        column_default: null,
      },
      { column_name: 'logs', data_type: 'text', length: null, is_nullable: 'YES', column_default: null },
      { column_name: 'rolled_back_at', data_type: tz, length: null, is_nullable: 'YES', column_default: null },
      { column_name: 'started_at', data_type: tz, length: null, is_nullable: 'NO', column_default: 'now()' },
      {
        column_name: 'applied_steps_count',
        data_type: 'integer',
        length: null,
        is_nullable: 'NO',
        column_default: '0',
      },
    ]);
  });

  it('lets two processes migrate a fresh database at once: both succeed, one set of rows', async () => {
    const url = freshDatabase();
    const results = await Promise.all([migrate(url, { logger, create: true }), migrate(url, { logger, create: true })]);
    expect(results.flat()).toEqual(ALL);
    expect((await history(url)).map((r) => r.migration_name)).toEqual(ALL);
  });

  it('refuses a migration whose file changed after it was applied, naming it', async () => {
    const url = freshDatabase();
    await migrate(url, { logger, create: true });
    await query(url, `UPDATE _prisma_migrations SET checksum = $1`, [
      createHash('sha256').update('something else').digest('hex'),
    ]);
    const attempt = migrate(url, { logger, create: true });
    await expect(attempt).rejects.toThrow(MigrationError);
    await expect(attempt).rejects.toThrow(new RegExp(`${INIT} was edited after it was applied`));
  });

  it('refuses to apply a new migration after a tampered one, and applies nothing', async () => {
    const url = freshDatabase();
    await migrate(url, { logger, create: true });
    await query(url, `UPDATE _prisma_migrations SET checksum = repeat('0', 64)`);
    const dir = migrationsWith({ '20261201000000_more': 'CREATE TABLE "more" ("id" INTEGER NOT NULL);\n' });
    await expect(migrate(url, { logger, create: true, migrationsDir: dir })).rejects.toThrow(INIT);
    expect(await query(url, `SELECT to_regclass('more') AS t`)).toEqual([{ t: null }]);
  });

  it('records a failing migration as failed (as Prisma would), rolls its statements back and names it', async () => {
    const url = freshDatabase();
    const broken = '20261201000000_broken';
    const dir = migrationsWith({ [broken]: 'CREATE TABLE "half" ("id" INTEGER);\nSELECT * FROM "no_such_table";\n' });
    await expect(migrate(url, { logger, create: true, migrationsDir: dir })).rejects.toThrow(
      new RegExp(`Migration ${broken} failed: .*no_such_table`),
    );
    const rows = await history(url);
    expect(rows.map((r) => [r.migration_name, r.finished_at === null, r.applied_steps_count])).toEqual([
      [INIT, false, 1],
      [broken, true, 0],
    ]);
    expect(rows[1]?.logs).toMatch(/42P01[\s\S]*no_such_table/);
    expect(await query(url, `SELECT to_regclass('half') AS t`)).toEqual([{ t: null }]);
    // Like `prisma migrate deploy` (P3009), later runs refuse until someone resolves it.
    await expect(migrate(url, { logger, create: true, migrationsDir: dir })).rejects.toThrow(
      new RegExp(`${broken} failed earlier`),
    );
  });

  it('waits on the lock prisma migrate takes, and gives up with a clear error', async () => {
    const url = freshDatabase();
    await migrate(url, { logger, create: true });
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    try {
      await holder.query('SELECT pg_advisory_lock($1)', [PRISMA_MIGRATE_LOCK_KEY]);
      await expect(migrate(url, { logger, create: true, lockTimeoutMs: 200 })).rejects.toThrow(/held the lock/);
    } finally {
      await holder.end();
    }
    expect(await migrate(url, { logger, create: true })).toEqual([]);
  });

  it('refuses a database that has tables but no migration history', async () => {
    const url = freshDatabase();
    await migrate(url, { logger, create: true });
    await query(url, 'DROP TABLE _prisma_migrations');
    await expect(migrate(url, { logger, create: true })).rejects.toThrow(
      /already has tables .*no _prisma_migrations history/,
    );
  });
});

describe('checksumMatches', () => {
  const sha = (text: string) => createHash('sha256').update(text).digest('hex');

  it('matches the sha256 of the script, whatever its line endings were when it was applied', () => {
    const unix = 'CREATE TABLE "a" ("id" INTEGER);\nCREATE TABLE "b" ("id" INTEGER);\n';
    const windows = unix.replaceAll('\n', '\r\n');
    expect(checksumMatches(unix, sha(unix))).toBe(true);
    expect(checksumMatches(unix, sha(windows))).toBe(true);
    expect(checksumMatches(windows, sha(unix))).toBe(true);
    expect(checksumMatches(unix, sha(`${unix} `))).toBe(false);
  });

  it('matches the unpadded hex that very old Prisma versions recorded', () => {
    // sha256('hello') has bytes below 0x10, so its unpadded hex is shorter than 64 characters.
    const unpadded = [...createHash('sha256').update('hello').digest()].map((b) => b.toString(16)).join('');
    expect(unpadded.length).toBeLessThan(64);
    expect(checksumMatches('hello', unpadded)).toBe(true);
    expect(checksumMatches('hello!', unpadded)).toBe(false);
  });
});
