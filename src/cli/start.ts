/**
 * npm start — the long-running service: migrations, then schedulers and workers for every configured
 * source. `--role worker` runs workers only, `--role scheduler` schedulers only (default: both).
 */
import { parseArgs } from 'node:util';
import { loadConfig, loadDotEnv } from '../config.ts';
import { migrate } from '../db/migrate.ts';
import { createLogger } from '../logger.ts';
import { startService, stopOnSignals } from '../../jobs/service.ts';
import { runCli, UsageError, usageErrorFrom } from './run-cli.ts';

const USAGE = 'Usage: npm start [-- --role <all|worker|scheduler>]';

runCli(USAGE, async () => {
  let values;
  try {
    ({ values } = parseArgs({
      args: process.argv.slice(2),
      options: { role: { type: 'string', default: 'all' } },
      strict: true,
    }));
  } catch (error) {
    usageErrorFrom(error);
  }
  if (!['all', 'worker', 'scheduler'].includes(values.role))
    throw new UsageError(`--role must be all, worker or scheduler (got "${values.role}")`);
  loadDotEnv();
  const config = loadConfig();
  const logger = createLogger(config.logLevel, undefined, { format: config.logFormat });
  await migrate(config.databaseUrl.reveal(), { logger });
  const service = await startService(config, logger, {
    workers: values.role !== 'scheduler',
    schedulers: values.role !== 'worker',
  });
  logger.info({ sources: service.sources, role: values.role, http: service.httpUrl }, 'voucher-sync is running');
  stopOnSignals(service, logger);
});
