import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PrismaClient } from '../generated/prisma/client.ts';
import type { Prisma } from '../generated/prisma/client.ts';

export type { PrismaClient };

/** The client handed to the callback of `prisma.$transaction(async (tx) => …)`. */
export type TransactionClient = Prisma.TransactionClient;

/** What the db functions accept: the client itself, or the client of an interactive transaction. */
export type Db = PrismaClient | TransactionClient;

export interface CreatePrismaOptions {
  /** Size of the pg connection pool. Default: pg's own default (10). */
  max?: number;
}

/** The pg pool under a client made by createPrisma, and its connections by server process id. */
interface Connections {
  pool: pg.Pool;
  byPid: Map<number, pg.PoolClient>;
}

const CONNECTIONS = Symbol('pg connections');

/** A Prisma client over the pg driver adapter (Prisma 7 has no built-in driver). Call `$disconnect()` when done. */
export function createPrisma(databaseUrl: string, options: CreatePrismaOptions = {}): PrismaClient {
  const pool = new pg.Pool({ connectionString: databaseUrl, ...(options.max !== undefined && { max: options.max }) });
  const byPid = new Map<number, pg.PoolClient>();
  pool.on('connect', (client) => void byPid.set((client as pg.PoolClient & { processID: number }).processID, client));
  pool.on('remove', (client) => void byPid.delete((client as pg.PoolClient & { processID: number }).processID));
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool, { disposeExternalPool: true }) });
  Object.defineProperty(prisma, CONNECTIONS, { value: { pool, byPid } satisfies Connections });
  return prisma;
}

/**
 * Runs one statement with large parameters on pg directly, inside `db`'s transaction when it is one (on the
 * connection that transaction holds, found by its server process id). Prisma's raw queries serialize every
 * parameter to JSON and back and keep the arguments of its last hundred debug calls alive whether debugging
 * is on or not: with pages of a megabyte of JSON that is a hundred megabytes of heap and a second of CPU per
 * 200,000 rows. Falls back to Prisma for a client that createPrisma did not make.
 */
export async function queryLarge<T>(db: Db, text: string, values: unknown[]): Promise<T[]> {
  const run = await largeQueries(db);
  return run<T>(text, values);
}

/** Runs statements on one session, as queryLarge does; `inTransaction` says whether they share a transaction. */
export type LargeQueries = (<T>(text: string, values: unknown[]) => Promise<T[]>) & { inTransaction: boolean };

/**
 * queryLarge for several statements: the transaction's connection is looked up once (one round trip),
 * not once per statement.
 */
export async function largeQueries(db: Db): Promise<LargeQueries> {
  const connections = (db as unknown as Record<symbol, Connections | undefined>)[CONNECTIONS];
  // A transaction client lacks $disconnect; the client itself may use any connection of the pool.
  const inTransaction = !('$disconnect' in db);
  const viaPrisma = <T>(text: string, values: unknown[]) => db.$queryRawUnsafe<T[]>(text, ...values);
  if (!connections) return Object.assign(viaPrisma, { inTransaction });
  if (!inTransaction) return Object.assign(async <T>(text: string, values: unknown[]) => (await connections.pool.query(text, values)).rows as T[], { inTransaction });
  // Safe while the caller awaits these: Prisma sends nothing on a transaction's connection between its statements.
  const [session] = await db.$queryRawUnsafe<{ pid: number }[]>('SELECT pg_backend_pid() AS pid');
  const connection = session && connections.byPid.get(session.pid);
  if (!connection) return Object.assign(viaPrisma, { inTransaction });
  return Object.assign(async <T>(text: string, values: unknown[]) => (await connection.query(text, values)).rows as T[], { inTransaction });
}
