/**
 * What /readyz answers: whether this process can do its work now — Postgres reachable, every migration of this
 * checkout applied, Redis reachable. Each failure is one sentence a person can act on, naming the database by
 * `user@host/name` (never its password) and Redis by its URL without the password.
 */
import type { Redis } from 'ioredis';
import type { Db } from '../db/client.ts';
import { largeQueries } from '../db/client.ts';
import { appliedMigrationNames, DEFAULT_MIGRATIONS_DIR, readMigrations } from '../db/migrate.ts';
import { scrubSecrets } from '../secrets.ts';

export interface ReadinessOptions {
  db: Db;
  redis: Redis;
  /** `user@host/name` of the database, for the messages. */
  databaseName: string;
  /** REDIS_URL without its password, for the messages. */
  redisName: string;
  /** Folder of the migrations this process expects applied. Default: the checkout's prisma/migrations. */
  migrationsDir?: string;
  /** How long one check may take before it counts as unreachable, in ms. Default 2000. */
  timeoutMs?: number;
}

export interface Readiness {
  ready: boolean;
  /** One line per problem; empty when ready. */
  problems: string[];
}

class CheckTimeout extends Error {}

function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new CheckTimeout(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function reasonOf(error: unknown): string {
  const text = error instanceof AggregateError && error.errors.length > 0 ? error.errors[0] : error;
  const message = text instanceof Error ? text.message || text.name : String(text);
  return scrubSecrets(message.split('\n')[0]!);
}

/** Builds the check once (the migration files are read at start-up: they do not change under a running process). */
export function createReadinessCheck(options: ReadinessOptions): () => Promise<Readiness> {
  const { db, redis, databaseName, redisName, timeoutMs = 2000 } = options;
  const expected = readMigrations(options.migrationsDir ?? DEFAULT_MIGRATIONS_DIR).map((m) => m.name);

  async function checkDatabase(): Promise<string[]> {
    let applied: string[];
    try {
      applied = await within(appliedMigrationNames(await largeQueries(db)), timeoutMs);
    } catch (error) {
      if ((error as { code?: string }).code === '42P01')
        return [`PostgreSQL database ${databaseName} has no migrations applied: run npm run db:migrate`];
      return [`PostgreSQL database ${databaseName} is unreachable: ${reasonOf(error)}`];
    }
    const missing = expected.filter((name) => !applied.includes(name));
    if (missing.length === 0) return [];
    return [
      `PostgreSQL database ${databaseName} lacks ${missing.length === 1 ? 'migration' : 'migrations'} ${missing.join(', ')}: run npm run db:migrate`,
    ];
  }

  async function checkRedis(): Promise<string[]> {
    // A connection given up for good answers nothing; one (re)connecting gets until the timeout.
    if (redis.status === 'end') return [`Redis at ${redisName} is unreachable (connection closed)`];
    try {
      await within(redis.ping(), timeoutMs);
      return [];
    } catch (error) {
      return [`Redis at ${redisName} is unreachable: ${reasonOf(error)}`];
    }
  }

  return async () => {
    const problems = (await Promise.all([checkDatabase(), checkRedis()])).flat();
    return { ready: problems.length === 0, problems };
  };
}
