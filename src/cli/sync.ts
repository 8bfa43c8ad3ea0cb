/**
 * npm run sync -- --source <carecloud|cin7|all> [--mode incremental|full]
 *
 * One run per source through the real queues, waited for, with a summary. A worker for the chosen
 * sources runs inside this command for its duration, so it works whether or not `npm start` is running;
 * if a run of the source is already under way, this one queues behind it, and says so. While it waits it shows
 * how far the runs have come (src/cli/sync-progress.ts); the summary is the totals of the logical run it asked for,
 * however many jobs' turns it took (waits, restarts).
 */
import { parseArgs } from 'node:util';
import { loadConfig, loadDotEnv } from '../config.ts';
import { createPrisma } from '../db/client.ts';
import { migrate } from '../db/migrate.ts';
import { createLogger } from '../logger.ts';
import { sectionOf, sourceNames, sources } from '../sources/index.ts';
import { sustainedRate } from '../status/eta.ts';
import { SYNC_MODES, type SyncMode } from '../types.ts';
import { waitForRedis } from '../../jobs/queues.ts';
import { formatOutcomes, runOnce } from '../../jobs/run-once.ts';
import { startService } from '../../jobs/service.ts';
import { HelpRequested, runCli, UsageError, usageErrorFrom } from './run-cli.ts';
import { createSyncProgress } from './sync-progress.ts';

const USAGE = `Usage: npm run sync -- --source <${[...sourceNames, 'all'].join('|')}> [--mode <${SYNC_MODES.join('|')}>]

  --source   which source to sync; "all" = every configured source
  --mode     incremental (default): what changed since the last run; full: re-read everything and mark
             vanished vouchers deleted (for Cin7 this is the reconciliation)`;

export function parseSyncArgs(args: string[]): { source: string; mode: SyncMode } {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        source: { type: 'string' },
        mode: { type: 'string', default: 'incremental' },
        help: { type: 'boolean' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    usageErrorFrom(error);
  }
  if (values.help) throw new HelpRequested();
  if (!values.source) throw new UsageError('--source is required');
  if (![...sourceNames, 'all'].includes(values.source))
    throw new UsageError(`--source must be one of ${[...sourceNames, 'all'].join(', ')} (got "${values.source}")`);
  if (!SYNC_MODES.includes(values.mode as SyncMode))
    throw new UsageError(`--mode must be one of ${SYNC_MODES.join(', ')} (got "${values.mode}")`);
  return { source: values.source, mode: values.mode as SyncMode };
}

runCli(USAGE, async () => {
  const { source, mode } = parseSyncArgs(process.argv.slice(2));
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
});
