/**
 * One configuration of the real service against a fake API: a fresh database and queue prefix, N worker
 * processes, jobs enqueued and waited for the way `npm run sync` does (jobs/run-once.ts), and what every
 * process used meanwhile (CPU from /proc, peak RSS, PostgreSQL's own accounting of the database).
 */
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import pg from 'pg';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/logger.ts';
import type { SyncMode } from '../src/types.ts';
import { runOnce, type OnceOutcome } from '../jobs/run-once.ts';
import { startService, type Service } from '../jobs/service.ts';
import type { FakeHost, SourceName } from './fake-host.ts';
import {
  REDIS_URL,
  cpuMs,
  createDatabase,
  createQueuePrefix,
  onCleanup,
  peakRss,
  sleep,
  startWorker,
  waitFor,
  withTimeout,
  type BenchDatabase,
  type WorkerProcess,
} from './infra.ts';

export interface ServiceRunOptions {
  source: SourceName;
  fake: FakeHost;
  workers: number;
  /** Extra service environment (page sizes, limits). */
  env?: Record<string, string>;
  /** Node flags for the worker processes (e.g. --cpu-prof). */
  workerNodeArgs?: string[];
}

/** CPU used (ms) by each process involved, between two snapshots. */
export interface CpuUse {
  workers: number[];
  fake: number;
  /** Client backends serving the bench database. */
  postgresBackends: number;
  /** walwriter, checkpointer, background writer… (shared with anything else running on the server). */
  postgresBackground: number;
  redis: number;
}

interface CpuSnapshot {
  workers: (number | null)[];
  fake: number | null;
  pg: Map<number, { ms: number; client: boolean }>;
  redisMs: number;
}

export interface JobOutcome {
  outcomes: OnceOutcome[];
  /** From enqueueing to the queue being drained and no run left running. */
  wallMs: number;
}

export interface ServiceRun {
  database: BenchDatabase;
  prefix: string;
  env: Record<string, string>;
  workers: WorkerProcess[];
  /** Enqueues one run of the source and waits until it and anything it spawned is done. */
  runJob(mode: SyncMode, timeoutMs: number): Promise<JobOutcome>;
  /** Enqueues one run of the source without waiting for it. */
  enqueue(mode: SyncMode): Promise<void>;
  snapshotCpu(): Promise<CpuSnapshot>;
  cpuSince(before: CpuSnapshot): Promise<CpuUse>;
  /**
   * Samples what the bench database's sessions are doing (pg_stat_activity, every `everyMs`) until stopped:
   * the average number of sessions per state, e.g. running, waiting on a lock, idle inside a transaction.
   */
  sampleWaits(everyMs?: number): { stop(): Promise<Record<string, number>> };
  /** Milliseconds PostgreSQL spent executing statements in the bench database (pg_stat_database.active_time). */
  pgActiveMs(): Promise<number>;
  query<T extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<T[]>;
  /** Stops the workers gracefully; returns each one's peak RSS read just before. */
  stopWorkers(): Promise<(number | null)[]>;
  close(): Promise<void>;
}

export function serviceEnv(
  source: SourceName,
  databaseUrl: string,
  prefix: string,
  fake: FakeHost,
  extra: Record<string, string> = {},
) {
  const other: Record<string, string> =
    source === 'carecloud'
      ? { CIN7_USERNAME: '', CIN7_API_KEY: '' }
      : {
          CARECLOUD_BASE_URL: '',
          CARECLOUD_LOGIN: '',
          CARECLOUD_PASSWORD: '',
          CARECLOUD_APP_ID: '',
          CARECLOUD_TIMEZONE: '',
        };
  return {
    DATABASE_URL: databaseUrl,
    REDIS_URL,
    QUEUE_PREFIX: prefix,
    LOG_LEVEL: 'info',
    JOB_ATTEMPTS: '2',
    JOB_BACKOFF: '1s',
    ...other,
    ...fake.env,
    ...extra,
  };
}

export async function startServiceRun(options: ServiceRunOptions): Promise<ServiceRun> {
  const database = await createDatabase(`bench_${options.source}`);
  const { prefix, clear } = createQueuePrefix();
  const env = serviceEnv(options.source, database.url, prefix, options.fake, options.env);
  const workers: WorkerProcess[] = [];
  // Started one after the other: they all migrate at start (a no-op after the first).
  for (let i = 0; i < options.workers; i++) workers.push(await startWorker(env, options.workerNodeArgs));
  const silent = createLogger('warn', new Writable({ write: (_chunk, _enc, done) => done() }));
  const service: Service = await startService(loadConfig(env), silent, {
    workers: false,
    schedulers: false,
    only: [options.source],
  });
  const admin = new pg.Client({ connectionString: database.url, application_name: 'voucher-sync bench' });
  admin.on('error', () => undefined);
  await admin.connect();
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 3 });
  redis.on('error', () => undefined);
  // Each step is bounded: with Redis or PostgreSQL restarting, closing a client can wait forever.
  const close = onCleanup(`service run ${prefix}`, async () => {
    await Promise.all(workers.map((w) => w.stop()));
    await withTimeout(service.stop(), 10_000, "stopping the driver's queues").catch(() => undefined);
    await withTimeout(admin.end(), 5000, 'closing the bench connection').catch(() => undefined);
    redis.disconnect();
    await clear().catch(() => undefined);
    // Let the closed sessions' statistics settle before the database goes.
    await sleep(50);
    await database.drop();
  });
  const query = async <T extends pg.QueryResultRow>(text: string, values?: unknown[]) =>
    (await admin.query<T>(text, values)).rows;

  async function drained(): Promise<boolean> {
    const queue = service.queues.get(options.source)!;
    const counts = await queue.getJobCounts('active', 'waiting', 'delayed', 'prioritized', 'waiting-children');
    if (Object.values(counts).some((n) => n > 0)) return false;
    const [running] = await query<{ n: number }>("SELECT count(*)::int AS n FROM sync_runs WHERE status = 'running'");
    return running?.n === 0;
  }

  async function snapshotCpu(): Promise<CpuSnapshot> {
    const rows = await query<{ pid: number; client: boolean }>(
      "SELECT pid, (backend_type = 'client backend') AS client FROM pg_stat_activity WHERE (datname = $1 OR backend_type <> 'client backend') AND pid <> pg_backend_pid()",
      [database.name],
    );
    const pgCpu = new Map<number, { ms: number; client: boolean }>();
    for (const row of rows) {
      const ms = cpuMs(row.pid);
      if (ms !== null) pgCpu.set(row.pid, { ms, client: row.client });
    }
    const info = await redis.info('cpu');
    const redisSeconds = ['used_cpu_user', 'used_cpu_sys'].reduce(
      (sum, key) => sum + Number(new RegExp(`^${key}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0),
      0,
    );
    return {
      workers: workers.map((w) => cpuMs(w.pid)),
      fake: options.fake.cpuMs(),
      pg: pgCpu,
      redisMs: redisSeconds * 1000,
    };
  }

  return {
    database,
    prefix,
    env,
    workers,
    async runJob(mode, timeoutMs) {
      const started = performance.now();
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_resolve, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new Error(`the ${mode} run of ${options.source} took longer than ${Math.round(timeoutMs / 1000)} s`),
            ),
          timeoutMs,
        );
      });
      try {
        const outcomes = await Promise.race([runOnce(service, REDIS_URL, prefix, mode, 'cli'), timeout]);
        let wallMs = performance.now() - started;
        // Work the job may have handed to other jobs (a backfill split in parts) must be finished too.
        if (!(await drained())) {
          await Promise.race([waitFor('the queue to drain', drained, timeoutMs, 50), timeout]);
          wallMs = performance.now() - started;
        }
        return { outcomes, wallMs };
      } finally {
        clearTimeout(timer);
      }
    },
    async enqueue(mode) {
      await service.queues
        .get(options.source)!
        .add(mode, { mode, requestedBy: 'cli' }, { jobId: `bench-${mode}-${Date.now()}` });
    },
    snapshotCpu,
    async cpuSince(before) {
      const after = await snapshotCpu();
      let postgresBackends = 0;
      let postgresBackground = 0;
      for (const [pid, now] of after.pg) {
        const delta = now.ms - (before.pg.get(pid)?.ms ?? (now.client ? 0 : now.ms));
        if (now.client) postgresBackends += delta;
        else postgresBackground += delta;
      }
      return {
        workers: after.workers.map((ms, i) => (ms ?? 0) - (before.workers[i] ?? 0)),
        fake: (after.fake ?? 0) - (before.fake ?? 0),
        postgresBackends,
        postgresBackground,
        redis: after.redisMs - before.redisMs,
      };
    },
    sampleWaits(everyMs = 100) {
      const counts = new Map<string, number>();
      let samples = 0;
      let running = true;
      const sampler = new pg.Client({ connectionString: database.url, application_name: 'voucher-sync bench sampler' });
      sampler.on('error', () => undefined);
      const done = (async () => {
        await sampler.connect();
        while (running) {
          const { rows } = await sampler.query<{ state: string; type: string | null; event: string | null }>(
            `SELECT state, wait_event_type AS type, wait_event AS event FROM pg_stat_activity
              WHERE datname = $1 AND backend_type = 'client backend' AND pid <> pg_backend_pid()
                AND application_name NOT LIKE 'voucher-sync bench%' AND state <> 'idle'`,
            [database.name],
          );
          samples++;
          for (const row of rows) {
            const key =
              row.state === 'active' ? (row.type ? `waiting: ${row.type}/${row.event}` : 'running (CPU)') : row.state;
            counts.set(key, (counts.get(key) ?? 0) + 1);
          }
          await sleep(everyMs);
        }
      })().catch(() => undefined);
      return {
        async stop() {
          running = false;
          await done;
          await sampler.end().catch(() => undefined);
          return Object.fromEntries(
            [...counts].sort((a, b) => b[1] - a[1]).map(([key, n]) => [key, samples > 0 ? n / samples : 0]),
          );
        },
      };
    },
    async pgActiveMs() {
      const [row] = await query<{ active: number }>(
        'SELECT active_time AS active FROM pg_stat_database WHERE datname = $1',
        [database.name],
      );
      return Number(row?.active ?? 0);
    },
    query,
    async stopWorkers() {
      const peaks = workers.map((w) => peakRss(w.pid));
      await Promise.all(workers.map((w) => w.stop()));
      return peaks;
    },
    close,
  };
}
