/**
 * voucher-sync start (npm start) — the long-running service: migrations, then schedulers and workers for every configured
 * source. `--role worker` runs workers only, `--role scheduler` schedulers only (default: both).
 */
import { Option, type Command } from 'commander';
import { loadConfig, loadDotEnv } from '../../config.ts';
import { migrate } from '../../db/migrate.ts';
import { createLogger } from '../../logger.ts';
import { startService, stopOnSignals } from '../../../jobs/service.ts';
import { act } from '../command-kit.ts';

type Role = 'all' | 'worker' | 'scheduler';

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
  const service = await startService(config, logger, {
    workers: role !== 'scheduler',
    schedulers: role !== 'worker',
  });
  logger.info({ sources: service.sources, role, http: service.httpUrl }, 'voucher-sync is running');
  stopOnSignals(service, logger);
}
