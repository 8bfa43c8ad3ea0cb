/**
 * voucher-sync start (npm start) — the long-running service: migrations, then schedulers and workers for every configured
 * source. `--role worker` runs workers only, `--role scheduler` schedulers only (default: both).
 */
import { Option, type Command } from 'commander';
import { loadConfig, loadDotEnv } from '../../config.ts';
import { migrate } from '../../db/migrate.ts';
import { createLogger } from '../../logger.ts';
import { redisUrlForDisplay, waitForRedis } from '../../../jobs/queues.ts';
import { startService, stopOnSignals } from '../../../jobs/service.ts';
import { act, EXIT } from '../command-kit.ts';

type Role = 'all' | 'worker' | 'scheduler';

/** How long `start` waits for Redis before it gives up. */
export const REDIS_STARTUP_WAIT_MS = 60_000;

export function register(program: Command): void {
  program
    .command('start')
    .description('the long-running service: schedulers and workers for every configured source (npm start)')
    .addOption(
      new Option('--role <role>', 'worker: workers only; scheduler: schedulers only')
        .choices(['all', 'worker', 'scheduler'])
        .default('all'),
    )
    .action(act(({ role }: { role: Role }) => start(role)));
}

async function start(role: Role): Promise<void> {
  loadDotEnv();
  const config = loadConfig();
  const logger = createLogger(config.logLevel, undefined, { format: config.logFormat });
  await migrate(config.databaseUrl.reveal(), { logger });
  // A minute, then one line and exit 1: under compose or Kubernetes the restart policy takes it from there, and by
  // hand a wrong REDIS_URL is said rather than retried for ever.
  await waitForRedis(config.redisUrl.reveal(), {
    timeoutMs: REDIS_STARTUP_WAIT_MS,
    onFirstFailure: (reason) =>
      logger.warn({ redis: redisUrlForDisplay(config.redisUrl.reveal()), reason }, 'waiting for Redis (REDIS_URL)'),
  });
  const service = await startService(config, logger, {
    workers: role !== 'scheduler',
    schedulers: role !== 'worker',
  }).catch((error: unknown) => {
    // A service that could not start must end, whatever it left open, so that its supervisor starts it again: the
    // error is reported (exit 1), then the process goes within a second.
    setTimeout(() => process.exit(process.exitCode ?? EXIT.failed), 1000).unref();
    throw error;
  });
  logger.info({ sources: service.sources, role, http: service.httpUrl }, 'voucher-sync is running');
  stopOnSignals(service, logger);
}
