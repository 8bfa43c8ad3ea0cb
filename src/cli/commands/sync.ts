/**
 * voucher-sync sync --source <carecloud|cin7|all> [--mode incremental|full]   (npm run sync -- …)
 * voucher-sync sync --source carecloud --customer ID [--customer ID…]: a customer run, in this process, beside any
 * run under way (./sync-customer.ts).
 *
 * One run per source through the real queues, waited for, with a summary. A worker for the chosen
 * sources runs inside this command for its duration, so it works whether or not `npm start` is running;
 * if a run of the source is already under way, this one queues behind it, and says so. While it waits it shows
 * how far the runs have come (src/cli/sync-progress.ts); the summary is the totals of the logical run it asked for,
 * however many jobs' turns it took (waits, restarts).
 *
 * Ctrl-C (or SIGTERM) cancels the runs it asked for, after their current page, wherever they run (jobs/cancel-run.ts),
 * and exits 130; a second one exits at once, the cancellation standing. With --detach it only queues the runs and
 * exits 0: the service's workers read them. A paused source is refused (exit 1): `voucher-sync resume` first.
 */
import { randomUUID } from 'node:crypto';
import { Option, type Command } from 'commander';
import { loadConfig, loadDotEnv } from '../../config.ts';
import { createPrisma, type Db } from '../../db/client.ts';
import { migrate } from '../../db/migrate.ts';
import { createLogger } from '../../logger.ts';
import { sectionOf, sources } from '../../sources/index.ts';
import { sustainedRate } from '../../status/eta.ts';
import { SYNC_MODES, type SyncMode } from '../../types.ts';
import { createRedis, waitForRedis } from '../../../jobs/queues.ts';
import { formatOutcomes, runOnce, type OnceCancel } from '../../../jobs/run-once.ts';
import { startService, type Service } from '../../../jobs/service.ts';
import { readHeartbeats } from '../../../jobs/heartbeat.ts';
import type { Config } from '../../config.ts';
import { readPause } from '../../db/source-control.ts';
import { act, EXIT, sourceOption } from '../command-kit.ts';
import { operator } from '../operator.ts';
import { createSyncProgress } from '../sync-progress.ts';
import { customerIdArgument, customerSources, syncCustomers } from './sync-customer.ts';

interface SyncOptions {
  source: string;
  mode: SyncMode;
  customer?: string[];
  detach: boolean;
}

export function register(program: Command): void {
  program
    .command('sync')
    .description('run one sync of a source now, through the queues, and wait for it')
    .addOption(sourceOption({ all: true }))
    .addOption(
      new Option(
        '--mode <mode>',
        'incremental: what changed since the last run; full: re-read everything and mark vanished vouchers deleted (for Cin7 the reconciliation)',
      )
        .choices(SYNC_MODES)
        .default('incremental'),
    )
    .addOption(
      new Option(
        '--customer <id...>',
        `re-read these customers' vouchers now, in this process, beside any run under way (${customerSources().join(', ')} only; no --mode): store what changed and mark deleted, once confirmed by id, those the customer no longer has; moves no watermark`,
      )
        .argParser(customerIdArgument)
        .conflicts(['mode', 'detach']),
    )
    .addOption(
      new Option('--detach', 'queue the run and exit at once, leaving it to the running service (voucher-sync start)')
        .default(false)
        .conflicts('customer'),
    )
    .action(act(sync))
    // Exits as soon as the command is done: everything it opened is closed by then and its output written (stdout and
    // the logs are synchronous), and what could hold the process on is PostgreSQL closing the sessions, which takes up
    // to a second on a busy server.
    .hook('postAction', () => process.exit());
}

async function sync({ source, mode, customer, detach }: SyncOptions): Promise<number> {
  if (customer) return syncCustomers({ source, customerIds: customer });
  loadDotEnv();
  const config = loadConfig();
  const logger = createLogger(config.logLevel, undefined, { format: config.logFormat });
  await migrate(config.databaseUrl.reveal(), { logger });
  // One client for the pause check, the progress reads and the worker: each Prisma client sets its query compiler up
  // anew, and the first use of each statement compiles it.
  const db = createPrisma(config.databaseUrl.reveal());
  let service: Service | undefined;
  const cancelling = new AbortController();
  try {
    const paused = await pausedLine(db, config, source);
    if (paused) {
      console.error(paused);
      return EXIT.failed;
    }
    // Before the service connects to Redis: unreachable, it would be retried for ever, one stack trace per attempt.
    await waitForRedis(config.redisUrl.reveal());
    service = await startService(config, logger, {
      schedulers: false,
      // Detached, the service's own workers read the run: none here.
      workers: !detach,
      role: 'sync',
      only: source === 'all' ? undefined : [source],
      db,
    });
    if (service.sources.length === 0) {
      console.error(
        source === 'all'
          ? 'No source is configured (see .env.example).'
          : `${source} is not configured: set its credentials (see .env.example).`,
      );
      return 1;
    }
    if (detach) return await queueDetached(service, config, mode);
    const rates = new Map(
      sources.map((s) => {
        const section = sectionOf(config, s);
        return [s.name, section === null ? null : sustainedRate(s.settings(section).limits.windows)] as const;
      }),
    );
    const progress = createSyncProgress();
    const cancel: OnceCancel = { signal: cancelling.signal, db, by: '' };
    const onSignal = (signal: NodeJS.Signals) => {
      if (cancelling.signal.aborted) process.exit(EXIT.cancelled);
      cancel.by = operator(`voucher-sync sync, ${signal}`);
      cancelling.abort();
      console.error(
        'Cancelling: the run stops after its current page (press Ctrl-C again to quit at once; it stops all the same).',
      );
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    const outcomes = await runOnce(
      service,
      config.redisUrl.reveal(),
      config.jobs.prefix,
      mode,
      'cli',
      {
        db,
        requestsPerSecond: (name) => rates.get(name) ?? null,
        onUpdate: (view) => progress.update(view),
      },
      {},
      cancel,
    )
      .finally(() => progress.stop())
      .finally(() => {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      });
    console.log(formatOutcomes(outcomes));
    if (outcomes.some((o) => !o.ok && o.cancelled)) return EXIT.cancelled;
    return outcomes.every((o) => o.ok) ? 0 : 1;
  } finally {
    await service?.stop();
    await db.$disconnect();
  }
}

/** The line refusing a run of paused sources (every configured one for `all`), or null when none is paused. */
async function pausedLine(db: Db, config: Config, source: string): Promise<string | null> {
  const names = source === 'all' ? sources.filter((s) => sectionOf(config, s) !== null).map((s) => s.name) : [source];
  const paused = [];
  for (const name of names) if (await readPause(db, name)) paused.push(name);
  if (paused.length === 0) return null;
  const resume = paused.map((name) => `voucher-sync resume --source ${name}`).join(', ');
  return `${paused.join(' and ')} ${paused.length === 1 ? 'is' : 'are'} paused: no run is started until ${resume}`;
}

/** --detach: the runs are queued for the service's workers, and the command says how to follow them. */
async function queueDetached(service: Service, config: Config, mode: SyncMode): Promise<number> {
  const redis = createRedis(config.redisUrl.reveal());
  try {
    const workers = (await readHeartbeats(redis, config.jobs.prefix)).filter(
      (p) => p.role === 'all' || p.role === 'worker',
    );
    for (const [source, queue] of service.queues) {
      const job = await queue.add(mode, { mode, requestedBy: 'cli' }, { jobId: `cli-${mode}-${randomUUID()}` });
      const served = workers.some((p) => p.sources.includes(source));
      console.log(
        `${source}: ${mode} run queued as job ${job.id}; it goes on without this command${
          served ? '' : ', once a worker runs (no worker of it is running now: voucher-sync start)'
        }.`,
      );
    }
    console.log('Follow it with voucher-sync status --watch; voucher-sync cancel --source <name> stops it.');
    return EXIT.ok;
  } finally {
    redis.disconnect();
  }
}
