/**
 * voucher-sync sync --source <carecloud|cin7|all> [--mode incremental|full]   (npm run sync -- …)
 *
 * One run per source through the real queues, waited for, with a summary. A worker for the chosen
 * sources runs inside this command for its duration, so it works whether or not `npm start` is running;
 * if a run of the source is already under way, this one queues behind it, and says so. While it waits it shows
 * how far the runs have come (src/cli/sync-progress.ts); the summary is the totals of the logical run it asked for,
 * however many jobs' turns it took (waits, restarts).
 */
import { Option, type Command } from 'commander';
import { loadConfig, loadDotEnv } from '../../config.ts';
import { createPrisma } from '../../db/client.ts';
import { migrate } from '../../db/migrate.ts';
import { createLogger } from '../../logger.ts';
import { sectionOf, sources } from '../../sources/index.ts';
import { sustainedRate } from '../../status/eta.ts';
import { SYNC_MODES, type SyncMode } from '../../types.ts';
import { waitForRedis } from '../../../jobs/queues.ts';
import { formatOutcomes, runOnce } from '../../../jobs/run-once.ts';
import { startService } from '../../../jobs/service.ts';
import { act, sourceOption } from '../command-kit.ts';
import { createSyncProgress } from '../sync-progress.ts';

interface SyncOptions {
  source: string;
  mode: SyncMode;
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
    .action(act(sync));
}

async function sync({ source, mode }: SyncOptions): Promise<number> {
  loadDotEnv();
  const config = loadConfig();
  const logger = createLogger(config.logLevel, undefined, { format: config.logFormat });
  await migrate(config.databaseUrl.reveal(), { logger });
  // Before the service connects to Redis: unreachable, it would be retried for ever, one stack trace per attempt.
  await waitForRedis(config.redisUrl.reveal());
  const service = await startService(config, logger, {
    schedulers: false,
    role: 'sync',
    only: source === 'all' ? undefined : [source],
  });
  const db = createPrisma(config.databaseUrl.reveal());
  try {
    if (service.sources.length === 0) {
      console.error(
        source === 'all'
          ? 'No source is configured (see .env.example).'
          : `${source} is not configured: set its credentials (see .env.example).`,
      );
      return 1;
    }
    const rates = new Map(
      sources.map((s) => {
        const section = sectionOf(config, s);
        return [s.name, section === null ? null : sustainedRate(s.settings(section).limits.windows)] as const;
      }),
    );
    const progress = createSyncProgress();
    const outcomes = await runOnce(service, config.redisUrl.reveal(), config.jobs.prefix, mode, 'cli', {
      db,
      requestsPerSecond: (name) => rates.get(name) ?? null,
      onUpdate: (view) => progress.update(view),
    }).finally(() => progress.stop());
    console.log(formatOutcomes(outcomes));
    return outcomes.every((o) => o.ok) ? 0 : 1;
  } finally {
    await service.stop();
    await db.$disconnect();
  }
}
