/**
 * The machine's PostgreSQL and Redis, restarted on purpose. Whatever happens, both are left running:
 * every restart brings its service back in a finally block, and `ensureInfraUp` repairs a service found down.
 */
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import pg from 'pg';
import { TEST_SERVER_URL } from '../helpers/db.ts';

const run = promisify(execFile);

const REDIS_HOST = '127.0.0.1';
const REDIS_START = [
  '--daemonize',
  'yes',
  '--bind',
  '127.0.0.1',
  '-::1',
  '--port',
  '6379',
  '--save',
  '',
  '--appendonly',
  'no',
  '--dir',
  '/var/lib/redis',
  '--logfile',
  '/var/log/redis/ci.log',
];

async function redisUp(): Promise<boolean> {
  try {
    const { stdout } = await run('redis-cli', ['-h', REDIS_HOST, 'ping'], { timeout: 5000 });
    return stdout.trim() === 'PONG';
  } catch {
    return false;
  }
}

async function postgresUp(): Promise<boolean> {
  const client = new pg.Client({ connectionString: `${TEST_SERVER_URL}/postgres`, connectionTimeoutMillis: 3000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function waitUntil(check: () => Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} did not come back within ${timeoutMs} ms`);
    await sleep(100);
  }
}

async function startRedis(): Promise<void> {
  if (await redisUp()) return;
  await run('redis-server', REDIS_START, { timeout: 10_000 });
  await waitUntil(redisUp, 'Redis');
}

async function startPostgres(): Promise<void> {
  if (await postgresUp()) return;
  const version = readdirSync('/etc/postgresql')[0]!;
  await run('pg_ctlcluster', ['--skip-systemctl-redirect', version, 'main', 'start'], { timeout: 60_000 }).catch(
    () => undefined,
  );
  await waitUntil(postgresUp, 'PostgreSQL');
}

/**
 * Shuts Redis down without saving (every queue, job and limiter log is lost, as on a real restart of a
 * Redis without persistence), stays down for `downMs`, and starts it again.
 */
export async function restartRedis(downMs = 0): Promise<void> {
  try {
    await run('redis-cli', ['-h', REDIS_HOST, 'shutdown', 'nosave'], { timeout: 10_000 }).catch(() => undefined);
    await waitUntil(async () => !(await redisUp()), 'Redis shutting down', 10_000).catch(() => undefined);
    if (downMs > 0) await sleep(downMs);
  } finally {
    await startRedis();
  }
}

/** Restarts the PostgreSQL cluster: every open connection is cut. */
export async function restartPostgres(): Promise<void> {
  const version = readdirSync('/etc/postgresql')[0]!;
  try {
    await run('pg_ctlcluster', ['--skip-systemctl-redirect', version, 'main', 'restart'], { timeout: 120_000 });
  } finally {
    await startPostgres();
  }
}

/** Brings back whichever of the two is down (call in finally blocks). */
export async function ensureInfraUp(): Promise<void> {
  await Promise.all([startRedis(), startPostgres()]);
}
