/**
 * What every part of the bench needs from the machine: throw-away databases, Redis keys under a prefix of
 * their own, worker processes of the real service, and what /proc says about a process (peak RSS, CPU).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import pg from 'pg';
import { migrate } from '../src/db/migrate.ts';
import { createLogger } from '../src/logger.ts';

export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
/** The server the bench creates its databases on (trust authentication). Override with BENCH_DATABASE_SERVER. */
export const SERVER_URL = process.env.BENCH_DATABASE_SERVER ?? 'postgresql://postgres@127.0.0.1:5432';
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
export const uniqueName = (prefix: string) => `${prefix}_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;

/** Resources to release at the end, newest first, even when a part fails or the bench is interrupted. */
const cleanups: { label: string; run: () => Promise<void> }[] = [];

export function onCleanup(label: string, run: () => Promise<void>): () => Promise<void> {
  const entry = { label, run };
  cleanups.push(entry);
  return async () => {
    const index = cleanups.indexOf(entry);
    if (index < 0) return;
    cleanups.splice(index, 1);
    await run();
  };
}

export async function cleanupAll(): Promise<void> {
  await cleanupSince(0);
}

/** Releases what was registered after `mark` (a value of `cleanupMark()`). */
async function cleanupSince(mark: number): Promise<void> {
  while (cleanups.length > mark) {
    const entry = cleanups.pop()!;
    await entry.run().catch((error: unknown) => console.error(`cleanup of ${entry.label} failed:`, error));
  }
}

export interface BenchDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

/** A fresh database with the product's migrations applied; dropped by `drop()` or at the end of the bench. */
export async function createDatabase(prefix: string): Promise<BenchDatabase> {
  const name = uniqueName(prefix);
  const url = `${SERVER_URL}/${name}`;
  const drop = onCleanup(`database ${name}`, () => dropDatabase(name));
  await migrate(url, { logger: createLogger('silent'), create: true });
  return { name, url, drop };
}

/** Drops a database, waiting for PostgreSQL if it is restarting. */
async function dropDatabase(name: string): Promise<void> {
  const deadline = Date.now() + 2 * 60_000;
  for (;;) {
    try {
      await withAdmin((admin) => admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await sleep(2000);
    }
  }
}

export async function withAdmin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const admin = new pg.Client({ connectionString: `${SERVER_URL}/postgres` });
  admin.on('error', () => undefined);
  await admin.connect();
  try {
    return await fn(admin);
  } finally {
    await admin.end();
  }
}

/** A queue prefix of its own; its keys are deleted by the returned function or at the end of the bench. */
export function createQueuePrefix(): { prefix: string; clear(): Promise<void> } {
  const prefix = uniqueName('vs-bench');
  const clear = onCleanup(`redis keys ${prefix}*`, () => deleteKeys(prefix));
  return { prefix, clear };
}

async function deleteKeys(prefix: string): Promise<void> {
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 3 });
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

// ---- processes ----------------------------------------------------------------------------------------

const CLOCK_TICKS = 100; // USER_HZ on Linux

/** Peak resident set (VmHWM) of a live process, in bytes; null once it has exited. */
export function peakRss(pid: number): number | null {
  return statusBytes(pid, 'VmHWM');
}

/** Resident set (VmRSS) of a live process now, in bytes; null once it has exited. */
export function currentRss(pid: number): number | null {
  return statusBytes(pid, 'VmRSS');
}

function statusBytes(pid: number, field: string): number | null {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** CPU time (user + system) a live process has used, in ms; null once it has exited. */
export function cpuMs(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start at field 3.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return null;
  }
}

/** Pids whose command name is `name` (e.g. redis-server). */
export function pidsNamed(name: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === name) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

export interface WorkerProcess {
  child: ChildProcess;
  pid: number;
  /** Epoch ms just before it was spawned (maps a --cpu-prof profile's clock onto the wall clock). */
  spawnedAt: number;
  /** Everything it wrote (pino JSON lines), last 2000 lines. */
  output: string[];
  /** SIGTERM (graceful: the current page is committed), then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

/** The Node flags `npm start` gives the service (its heap limit), read from package.json. */
export function serviceNodeFlags(): string[] {
  const { scripts } = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
    scripts: Record<string, string>;
  };
  return scripts.start?.match(/--max-old-space-size=\d+/g) ?? [];
}

/**
 * A worker process of the real service, as `npm start -- --role worker` runs it (its Node flags included).
 * Resolves once it says it is running. `nodeArgs` go before the script (e.g. --cpu-prof) and after the
 * service's own flags, so they can override them.
 */
export async function startWorker(env: Record<string, string>, nodeArgs: string[] = []): Promise<WorkerProcess> {
  const spawnedAt = Date.now();
  const child = spawn(
    process.execPath,
    [...serviceNodeFlags(), ...nodeArgs, 'dist/src/cli/main.js', 'start', '--role', 'worker'],
    {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const output: string[] = [];
  let ready: () => void;
  const running = new Promise<void>((resolve) => (ready = resolve));
  const collect = (chunk: Buffer) => {
    const text = String(chunk);
    output.push(text);
    if (output.length > 2000) output.splice(0, output.length - 2000);
    if (text.includes('voucher-sync is running')) ready();
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const exited = once(child, 'exit');
  const kill = onCleanup(`worker ${child.pid}`, async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const stop = async (graceMs = 30_000) => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    }
    await kill();
  };
  const started = await Promise.race([
    running.then(() => true),
    exited.then(() => false),
    sleep(60_000).then(() => false),
  ]);
  if (!started) {
    await stop(1000);
    throw new Error(`a worker did not start:\n${output.join('').slice(-3000)}`);
  }
  return { child, pid: child.pid!, spawnedAt, output, stop };
}

export const LOG_DIR = fileURLToPath(new URL('./logs/', import.meta.url));

/** Keeps what the workers of a failed measurement wrote (bench/logs/, git-ignored); returns the path. */
export function saveWorkerLogs(name: string, workers: WorkerProcess[]): string {
  mkdirSync(LOG_DIR, { recursive: true });
  const path = `${LOG_DIR}${name.replace(/[^\w.-]+/g, '-')}-${Date.now()}.log`;
  writeFileSync(path, workers.map((w) => `==== worker ${w.pid} ====\n${w.output.join('')}`).join('\n'));
  return path;
}

/** Polls `check` every `everyMs` until it is true; throws after `timeoutMs`. */
export async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs: number,
  everyMs = 200,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}`);
    await sleep(everyMs);
  }
}

// ---- the machine is shared ------------------------------------------------------------------------------

/** CPU time (ms, summed over all cores) the whole machine spent busy since boot. */
export function machineBusyMs(): number {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal
  const busy =
    (fields[0] ?? 0) + (fields[1] ?? 0) + (fields[2] ?? 0) + (fields[5] ?? 0) + (fields[6] ?? 0) + (fields[7] ?? 0);
  return (busy * 1000) / CLOCK_TICKS;
}

/** Thrown when PostgreSQL or Redis restarted during a measurement: its figures mean nothing. */
export class DisturbedError extends Error {
  override readonly name = 'DisturbedError';
}

export interface ServerIdentity {
  postgresStartedAt: string;
  redisRunId: string;
}

/** Who the servers are right now: a change means one restarted. Throws when either is unreachable. */
export async function serverIdentity(): Promise<ServerIdentity> {
  const postgresStartedAt = await withAdmin(async (admin) => {
    const { rows } = await admin.query<{ at: Date }>('SELECT pg_postmaster_start_time() AS at');
    return rows[0]!.at.toISOString();
  });
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1, lazyConnect: true, retryStrategy: () => null });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    const info = await redis.info('server');
    return { postgresStartedAt, redisRunId: /^run_id:(\w+)/m.exec(info)?.[1] ?? '' };
  } finally {
    redis.disconnect();
  }
}

/** Rejects with `error()` when `promise` takes longer than `ms`. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>(
        (_resolve, reject) => (timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms)),
      ),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Waits until PostgreSQL and Redis both answer (they may be restarting). */
export async function serversUp(timeoutMs = 5 * 60_000): Promise<ServerIdentity> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await withTimeout(serverIdentity(), 10_000, 'asking PostgreSQL and Redis who they are');
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await sleep(2000);
    }
  }
}

export interface SettleOptions {
  /** Busy cores (outside the bench) under which the machine counts as quiet. */
  maxBusyCores: number;
  /** The longest wait for quiet; then the measurement goes ahead (and its record says how busy it was). */
  maxWaitMs: number;
}

/** Waits, within reason, until other work on the machine uses less than `maxBusyCores`. */
async function settle(options: SettleOptions, label: string, log: (line: string) => void): Promise<number> {
  const deadline = Date.now() + options.maxWaitMs;
  let warned = false;
  for (;;) {
    const before = machineBusyMs();
    await sleep(3000);
    const busy = (machineBusyMs() - before) / 3000;
    if (busy <= options.maxBusyCores || Date.now() > deadline) {
      if (busy > options.maxBusyCores)
        log(`${label}: the machine is still busy (${busy.toFixed(2)} cores in use by other work); measuring anyway`);
      return busy;
    }
    if (!warned) log(`${label}: waiting for the machine to calm down (${busy.toFixed(2)} cores in use by other work)`);
    warned = true;
  }
}

/** Waits (a minute at most) for other work to quiet down: between the rounds of one measurement. */
export async function settleQuietly(label: string, log: (line: string) => void): Promise<number> {
  return settle({ ...measurePolicy.settle, maxWaitMs: Math.min(measurePolicy.settle.maxWaitMs, 60_000) }, label, log);
}

/** Settings for every `measured` call of this bench run. */
export const measurePolicy: { settle: SettleOptions; attempts: number } = {
  settle: { maxBusyCores: 0.3, maxWaitMs: 5 * 60_000 },
  attempts: 5,
};

/**
 * Runs one measurement on a machine other work shares: waits for quiet first, aborts as soon as PostgreSQL
 * or Redis restarts or stops answering (a watchdog asks them every 2 s), and then runs it again once they are
 * back, up to `attempts` times.
 */
export async function measured<T>(
  label: string,
  fn: () => Promise<T>,
  log: (line: string) => void,
  attempts = measurePolicy.attempts,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const mark = cleanups.length;
    let watching = true;
    try {
      const before = await serversUp();
      await settle(measurePolicy.settle, label, log);
      const watchdog = new Promise<never>((_resolve, reject) => {
        void (async () => {
          while (watching) {
            await sleep(2000);
            if (!watching) return;
            const now = await withTimeout(serverIdentity(), 10_000, 'the watchdog').catch(() => undefined);
            if (!watching) return;
            if (!now || now.postgresStartedAt !== before.postgresStartedAt || now.redisRunId !== before.redisRunId) {
              reject(new DisturbedError('PostgreSQL or Redis restarted or stopped answering during the measurement'));
              return;
            }
          }
        })();
      });
      watchdog.catch(() => undefined);
      const work = fn();
      // Once abandoned, whatever the measurement still does fails as its processes are stopped: not our error.
      work.catch(() => undefined);
      return await Promise.race([work, watchdog]);
    } catch (error) {
      watching = false;
      await serversUp().catch(() => undefined);
      await cleanupSince(mark);
      const message = error instanceof Error ? error.message : String(error);
      if (attempt >= attempts)
        throw new Error(`${label}: failed ${attempts} times; last: ${message}`, { cause: error });
      log(`${label}: attempt ${attempt} failed (${message.split('\n')[0]}); trying again`);
    } finally {
      watching = false;
    }
  }
}
