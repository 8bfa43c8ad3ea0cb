import { PrismaPg } from '@prisma/adapter-pg';
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

/** A Prisma client over the pg driver adapter (Prisma 7 has no built-in driver). Call `$disconnect()` when done. */
export function createPrisma(databaseUrl: string, options: CreatePrismaOptions = {}): PrismaClient {
  const adapter = new PrismaPg({ connectionString: databaseUrl, ...(options.max !== undefined && { max: options.max }) });
  return new PrismaClient({ adapter });
}
