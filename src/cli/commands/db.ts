/**
 * `voucher-sync db:migrate [--create]` (npm run db:migrate): applies prisma/migrations, like `prisma migrate deploy` but without Prisma's
 * downloaded schema engine; with `--create`, creates the database first when it does not exist (the first install).
 */
import type { Command } from 'commander';
import { loadConfig, loadDotEnv } from '../../config.ts';
import { hidePassword } from '../../db/database-url.ts';
import { migrate } from '../../db/migrate.ts';
import { ConfigError } from '../../errors.ts';
import { createLogger } from '../../logger.ts';
import { act } from '../command-kit.ts';

export function register(program: Command): void {
  program
    .command('db:migrate')
    .description('apply the pending migrations to the database of DATABASE_URL')
    .option('--create', 'create the database first when it does not exist (the first install)', false)
    .action(act(({ create }: { create: boolean }) => migrateCommand(create)));
}

async function migrateCommand(create: boolean): Promise<number> {
  loadDotEnv();
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(error.message);
    return 1;
  }
  const databaseUrl = config.databaseUrl.reveal();
  // Progress goes to stderr as log lines; stdout carries only the result.
  const logger = createLogger(config.logLevel, process.stderr, { format: config.logFormat });
  try {
    const applied = await migrate(databaseUrl, { logger, create });
    console.log(
      applied.length === 0
        ? 'Database is up to date.'
        : `Applied ${applied.length} migration(s):\n${applied.map((name) => `  ${name}`).join('\n')}`,
    );
    return 0;
  } catch (error) {
    // Only the message, passed through hidePassword: a driver error or its `cause` is never printed whole.
    const message = error instanceof Error ? error.message : String(error);
    console.error(`Migration failed: ${hidePassword(message, databaseUrl)}`);
    return 1;
  }
}
