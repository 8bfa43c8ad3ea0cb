/**
 * `npm run db:migrate [-- --create]`: applies prisma/migrations, like `prisma migrate deploy` but without Prisma's
 * downloaded schema engine; with `--create`, creates the database first when it does not exist (the first install).
 */
import { loadConfig, loadDotEnv } from '../config.ts';
import { hidePassword } from '../db/database-url.ts';
import { migrate } from '../db/migrate.ts';
import { ConfigError } from '../errors.ts';
import { createLogger } from '../logger.ts';

const USAGE = `Usage: npm run db:migrate [-- --create]   (reads DATABASE_URL)

  --create   create the database first when it does not exist (the first install)`;

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const unknown = args.filter((a) => a !== '--create');
  if (unknown.length > 0) {
    console.error(`db:migrate: unknown argument(s) ${unknown.map((a) => JSON.stringify(a)).join(' ')}\n\n${USAGE}`);
    return 2;
  }
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
    const applied = await migrate(databaseUrl, { logger, create: args.includes('--create') });
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

process.exitCode = await main();
