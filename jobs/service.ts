/**
 * The long-running service: for every configured source, its queue, its schedulers and its worker.
 * SIGTERM/SIGINT stop it gracefully: the active run stops after committing its current page, its job goes
 * back to the queue, and the next start resumes the scan where it stopped.
 */
import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import type { Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../src/config.ts';
import { createPrisma, type Db } from '../src/db/client.ts';
import { describeDatabaseUrl } from '../src/db/database-url.ts';
import { saveReportingTimezone } from '../src/db/history.ts';
import { installationId } from '../src/db/installation.ts';
import { startHistoryUpkeep } from './history-upkeep.ts';
import type { Logger } from '../src/logger.ts';
import { sectionOf, sources } from '../src/sources/index.ts';
import { bindPrefix, claimPrefix, prefixInUse, releasePrefix, type DatabaseIdentity } from './queue-binding.ts';
import { createRedis, createSourceQueue, type SyncJobData, type SyncJobResult } from './queues.ts';
import { createSourceRuntimes } from './runtime.ts';
import { scheduleSource, unscheduleSource } from './scheduler.ts';
import { createSliceDispatcher, createSliceQueue, createSliceWorker } from './slices.ts';
import { createSourceWorker } from './worker.ts';
import { startHeartbeat, type ServiceRole } from './heartbeat.ts';
import type { OperatorServer } from '../src/server/operator-server.ts';

export interface ServiceOptions {
  /** Run the workers of this process. Default true. */
  workers?: boolean;
  /** Upsert the Job Schedulers. Default true. */
  schedulers?: boolean;
  /** Only these sources (default: every configured source). */
  only?: string[];
  /** How often the queue settings and schedulers are re-asserted, in ms (default 30 s). */
  maintenanceMs?: number;
  /** How often the history's upkeep runs (jobs/history-upkeep.ts); tests shorten it. Default: every minute, hourly. */
  historyUpkeep?: { compactEveryMs?: number; pruneEveryMs?: number };
  /**
   * What this process is, as its heartbeat (jobs/heartbeat.ts) and its HTTP endpoint tell. Default: from `workers`
   * and `schedulers` — both `all`, workers only `worker`, schedulers only `scheduler`. `npm run sync` says `sync`.
   */
  role?: ServiceRole;
  /**
   * The caller's database client, used instead of one of the service's own and left open by stop(): `npm run sync`
   * reads the ledger while its worker writes it, and each Prisma client sets its query compiler up anew.
   */
  db?: Db;
}

export interface Service {
  sources: string[];
  /** What this process is (see ServiceOptions.role). */
  role: ServiceRole;
  /** Where its operator endpoint listens (HTTP_PORT), e.g. `http://127.0.0.1:8080`; null when it is off. */
  readonly httpUrl: string | null;
  queues: Map<string, Queue<SyncJobData, SyncJobResult>>;
  stop(): Promise<void>;
}

export async function startService(config: Config, logger: Logger, options: ServiceOptions = {}): Promise<Service> {
  let lastWarning = 0;
  const warn = (error: Error) => {
    // One line a minute is enough while Redis is away.
    if (Date.now() - lastWarning > 60_000) logger.warn({ err: error }, 'Redis is unreachable; retrying');
    lastWarning = Date.now();
  };
  const redis: Redis = createRedis(config.redisUrl.reveal(), warn);
  const db = options.db ?? createPrisma(config.databaseUrl.reveal());
  const disconnectDb = options.db ? async () => {} : () => db.$disconnect();
  // Before anything under the prefix is touched: a prefix another database uses is refused.
  const lease = randomUUID();
  let identity: DatabaseIdentity;
  try {
    identity = { id: await installationId(db), described: describeDatabaseUrl(config.databaseUrl.reveal()) };
    await bindPrefix(redis, config.jobs.prefix, identity, lease);
  } catch (error) {
    // A start that fails releases what it opened, so that the process ends (exit 1) and its supervisor restarts it:
    // a Redis client left reconnecting would keep it alive, neither running nor gone.
    await disconnectDb().catch(() => undefined);
    redis.disconnect();
    throw error;
  }
  const controller = new AbortController();
  const runtimes = createSourceRuntimes(config, { redis, logger }).filter(
    (r) => !options.only || options.only.includes(r.name),
  );
  // Every request and every wait for the rate limiter listens to the shutdown signal while it lasts: per
  // source, up to SLICE_CONCURRENCY slices at once, each with a page fetched ahead, and a run (whose slice
  // plan makes up to 8 requests at once). Node warns of a leak past 10 by default.
  setMaxListeners(Math.max(10, runtimes.length * (4 * config.jobs.sliceConcurrency + 32)), controller.signal);
  const queues = new Map<string, Queue<SyncJobData, SyncJobResult>>();
  const workers: Worker[] = [];
  const sliceQueues: Queue[] = [];
  for (const runtime of runtimes) {
    const queue = await createSourceQueue(runtime.name, redis, config.jobs);
    queues.set(runtime.name, queue);
    if (options.schedulers !== false) {
      const schedules = await scheduleSource(queue, runtime.settings, config.jobs);
      logger.info({ source: runtime.name, schedules }, 'scheduled');
    }
    if (options.workers !== false) {
      const sliceQueue = createSliceQueue(runtime.name, redis, config);
      const slices = createSliceDispatcher(sliceQueue);
      const common = { config, runtime, db, logger, signal: controller.signal };
      workers.push(
        createSourceWorker({ ...common, queue, connection: createRedis(config.redisUrl.reveal(), warn), slices }),
      );
      workers.push(
        createSliceWorker({ ...common, queue: sliceQueue, connection: createRedis(config.redisUrl.reveal(), warn) }),
      );
      sliceQueues.push(sliceQueue);
    }
  }
  if (options.schedulers !== false) {
    for (const source of sources.filter((s) => sectionOf(config, s) === null)) {
      const removed = await unscheduleSource(source.name, redis, config.jobs);
      if (removed.length > 0)
        logger.info({ source: source.name, removed }, 'unscheduled: its credentials are no longer set');
    }
  }
  if (runtimes.length === 0)
    logger.warn('no source is configured: set the credentials of at least one source (see .env.example)');
  const role: ServiceRole =
    options.role ?? (options.workers === false ? 'scheduler' : options.schedulers === false ? 'worker' : 'all');
  const heartbeat = await startHeartbeat(
    redis,
    config.jobs.prefix,
    { role, sources: runtimes.map((r) => r.name) },
    { onError: (error) => logger.warn({ err: error }, 'could not write the heartbeat; will try again') },
  );
  // A scheduler keeps the history up (jobs/history-upkeep.ts) and tells the reporting views their time zone.
  const isScheduler = role === 'all' || role === 'scheduler';
  if (isScheduler) await saveReportingTimezone(db, config.reporting.timezone);
  const upkeep = isScheduler
    ? startHistoryUpkeep({ db, retentionMs: config.reporting.historyRetentionMs, logger, ...options.historyUpkeep })
    : null;
  // Each scheduler checks; the state kept in Redis stops a change from being sent twice (src/alerts/alert-loop.ts).
  // The alert loop and the HTTP server (express, Bull Board, the page) are loaded only by a process that runs them:
  // a worker without HTTP_PORT holds 40 MB less.
  const alerts =
    isScheduler && config.alerts.webhookUrl !== null
      ? (await import('../src/alerts/start-alerts.ts')).startAlerts({ config, db, redis, logger })
      : null;
  // A Redis that lost its data (restarted without persistence, flushed, failed over) forgets the Job
  // Schedulers and the queues' global concurrency. Re-assert both regularly: the calls are idempotent.
  const maintenance = setInterval(() => {
    void claimPrefix(redis, config.jobs.prefix, identity, lease).then(
      (other) => other && logger.error(prefixInUse(config.jobs.prefix, other).message),
      (error: unknown) => logger.warn({ err: error }, 'could not renew the queue prefix binding; will try again'),
    );
    for (const runtime of runtimes) {
      const queue = queues.get(runtime.name)!;
      void (async () => {
        await queue.setGlobalConcurrency(1);
        if (options.schedulers !== false) await scheduleSource(queue, runtime.settings, config.jobs);
      })().catch((error: unknown) =>
        logger.warn({ err: error, source: runtime.name }, 'could not re-assert the queue settings; will try again'),
      );
    }
  }, options.maintenanceMs ?? 30_000);
  maintenance.unref();
  // A scheduler serves no slice queue, but its queue dashboard shows them all the same.
  const boardQueues = options.workers === false ? runtimes.map((r) => createSliceQueue(r.name, redis, config)) : [];
  let server: OperatorServer | null = null;
  let stopping: Promise<void> | undefined;
  const service: Service = {
    sources: runtimes.map((r) => r.name),
    role,
    get httpUrl() {
      return server?.url ?? null;
    },
    queues,
    stop() {
      stopping ??= (async () => {
        clearInterval(maintenance);
        await alerts?.stop();
        await upkeep?.stop();
        await server?.close();
        // Said first: a process that is stopping takes no new run, and status should not count on it.
        await heartbeat
          .stop()
          .catch((error: unknown) =>
            logger.warn({ err: error }, 'could not delete the heartbeat; it lapses by itself'),
          );
        controller.abort();
        await Promise.all(workers.map((w) => w.close()));
        await Promise.all(workers.map((w) => w.disconnect()));
        await Promise.all([...queues.values(), ...sliceQueues, ...boardQueues].map((q) => q.close()));
        await releasePrefix(redis, config.jobs.prefix, lease).catch((error: unknown) =>
          logger.warn({ err: error }, 'could not give up the queue prefix binding; it lapses by itself'),
        );
        await disconnectDb();
        redis.disconnect();
      })();
      return stopping;
    },
  };
  // Health, readiness, metrics, the queue dashboard and (scheduler, all) the status page: see src/server/. Not for
  // `npm run sync`: it reads HTTP_PORT from the same .env as `npm start` and would find the port taken.
  if (config.server.port !== null && role !== 'sync') {
    try {
      const boarded = [...queues.values(), ...sliceQueues, ...boardQueues];
      const { createOperatorServer } = await import('../src/server/operator-server.ts');
      server = await createOperatorServer({ config, role, db, redis, queues: boarded, logger });
    } catch (error) {
      await service.stop();
      throw error;
    }
  }
  return service;
}

/** Stops the service on SIGTERM/SIGINT; a second signal exits at once. */
export function stopOnSignals(service: Service, logger: Logger, onStopped: () => void = () => process.exit(0)): void {
  let received = false;
  const handler = (signal: NodeJS.Signals) => {
    if (received) process.exit(130);
    received = true;
    logger.info({ signal }, 'stopping: the current page is committed, then the run is put back in its queue');
    service.stop().then(onStopped, (error: unknown) => {
      logger.error({ err: error }, 'error while stopping');
      process.exit(1);
    });
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
}
