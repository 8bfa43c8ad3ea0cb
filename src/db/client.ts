/**
 * The database handle and its one vocabulary: `Db` is the Prisma client (it opens transactions), `Tx` the
 * client of an interactive transaction. A statement function that works either way takes `Db | Tx`.
 * Every SQL statement of the service lives in this folder (src/db/), one small function each.
 */
import { setFlagsFromString } from 'node:v8';
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PrismaClient } from '../generated/prisma/client.ts';
import type { Prisma } from '../generated/prisma/client.ts';

export type { PrismaClient };

/** The database: a Prisma client made by createPrisma. */
export type Db = PrismaClient;

/** The client handed to the callback of `db.$transaction(async (tx) => …)`. */
export type Tx = Prisma.TransactionClient;

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

/**
 * How much of a WebAssembly function V8 runs before it compiles it again, optimized, in the background (V8's own
 * default: 1,800,000, "a rough approximation of bytes executed"). Prisma's query compiler is 3.4 MB of WebAssembly
 * that runs only when a statement of a new shape is first used, and then in bursts: at V8's default, the twenty or
 * so statements of a short command send hundreds of its functions to the optimizing compiler, which keeps the second
 * core busy, takes the main thread's time, and holds the exit until it is done. An idle `voucher-sync sync` took
 * 1.7 s with it and 1.2 s with this budget. A long-running process compiles few new statements after its first
 * minutes (Prisma caches each plan), so it loses nothing that matters; what stays hot is still optimized.
 */
const QUERY_COMPILER_TIERING_BUDGET = 100_000_000;
// Set as this module loads, before any client exists: the first statement compiles the query compiler's WebAssembly
// (setFlagsFromString: Node's way to set a V8 option from the program, so that every command, test and image has it
// without a flag on its command line).
setFlagsFromString(`--wasm-tiering-budget=${QUERY_COMPILER_TIERING_BUDGET}`);

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
 * Runs statements with large parameters on one session. `inTransaction`: they run inside the caller's
 * transaction; `direct`: on pg itself rather than through Prisma (see largeQueries).
 */
export type LargeQueries = (<T>(text: string, values: unknown[]) => Promise<T[]>) & {
  inTransaction: boolean;
  direct: boolean;
};

/**
 * Statements with large parameters (a page of a megabyte of JSON), run on pg directly: Prisma's raw queries
 * serialize every parameter to JSON and back and keep the arguments of its last hundred debug calls alive
 * whether debugging is on or not, which with such pages is a hundred megabytes of heap and a second of CPU
 * per 200,000 rows. Falls back to Prisma for a client that createPrisma did not make.
 *
 * Inside a transaction the statements must run on the connection that transaction holds. Prisma does not
 * say which one that is, so it is found by its server process id (`pg_backend_pid()`, asked through the
 * transaction: one round trip per call, not per statement). ASSUMPTION — the one place the service relies
 * on Prisma's internals: while the caller awaits these statements, Prisma sends nothing on the transaction's
 * connection (an interactive transaction runs one statement at a time, and its callback is what is
 * running). Should a Prisma upgrade break that (pipelining, a keep-alive, a pool in the adapter that hands
 * out another connection per statement), test/db/client.test.ts fails: it checks that the connection is
 * found, that a statement on it sees the transaction's uncommitted writes, and that a rollback undoes it.
 */
export async function largeQueries(db: Db | Tx): Promise<LargeQueries> {
  const connections = (db as unknown as Record<symbol, Connections | undefined>)[CONNECTIONS];
  // A transaction client lacks $disconnect; the client itself may use any connection of the pool.
  const inTransaction = !('$disconnect' in db);
  const on = (query: <T>(text: string, values: unknown[]) => Promise<T[]>, direct: boolean) =>
    Object.assign(query, { inTransaction, direct });
  const viaPrisma = on(<T>(text: string, values: unknown[]) => db.$queryRawUnsafe<T[]>(text, ...values), false);
  if (!connections) return viaPrisma;
  if (!inTransaction)
    return on(
      async <T>(text: string, values: unknown[]) => (await connections.pool.query(text, values)).rows as T[],
      true,
    );
  const [session] = await db.$queryRawUnsafe<{ pid: number }[]>('SELECT pg_backend_pid() AS pid');
  const connection = session && connections.byPid.get(session.pid);
  if (!connection) return viaPrisma;
  return on(async <T>(text: string, values: unknown[]) => (await connection.query(text, values)).rows as T[], true);
}
