/**
 * A fresh, migrated database per test file (or per test): tests never share rows, and run against the
 * real PostgreSQL of the machine.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createPrisma, type PrismaClient } from '../../src/db/client.ts';
import { migrate } from '../../src/db/migrate.ts';
import { createLogger } from '../../src/logger.ts';

/** The test server: trust authentication, user postgres. Override with TEST_DATABASE_SERVER. */
export const TEST_SERVER_URL = process.env.TEST_DATABASE_SERVER ?? 'postgresql://postgres@127.0.0.1:5432';

export interface TestDatabase {
  name: string;
  url: string;
  prisma: PrismaClient;
  /** Disconnects Prisma and drops the database, even with connections still open. */
  drop(): Promise<void>;
}

/** A database name no other test uses; tests may call it to get a URL for a database not created yet. */
export function uniqueDatabaseUrl(prefix = 'test'): { name: string; url: string } {
  const name = `${prefix}_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  return { name, url: `${TEST_SERVER_URL}/${name}` };
}

/** Creates a uniquely named database and applies prisma/migrations to it with our migrate(). */
export async function createTestDatabase(options: { prefix?: string } = {}): Promise<TestDatabase> {
  const { name, url } = uniqueDatabaseUrl(options.prefix);
  await migrate(url, { logger: createLogger('silent'), create: true });
  const prisma = createPrisma(url, { max: 4 });
  return { name, url, prisma, drop: () => dropTestDatabase(name, prisma) };
}

/** Drops a test database by name (FORCE ends any connection a failed test left open). */
export async function dropTestDatabase(name: string, prisma?: PrismaClient): Promise<void> {
  await prisma?.$disconnect();
  const admin = new pg.Client({ connectionString: `${TEST_SERVER_URL}/postgres` });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS "${name.replaceAll('"', '""')}" WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}
