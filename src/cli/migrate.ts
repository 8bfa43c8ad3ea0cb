/**
 * `npm run db:migrate`: creates the database if needed and applies prisma/migrations, like
 * `prisma migrate deploy` but without Prisma's downloaded schema engine.
 */
import { loadConfig, loadDotEnv } from '../config.ts';
import { hidePassword } from '../db/database-url.ts';
import { migrate } from '../db/migrate.ts';
import { ConfigError } from '../errors.ts';
import { createLogger } from '../logger.ts';

const USAGE = 'Usage: npm run db:migrate   (takes no arguments; reads DATABASE_URL)';

async function main(): Promise<number> {
  if (process.argv.length > 2) {
    console.error(
      `db:migrate takes no arguments (got ${process.argv
        .slice(2)
        .map((a) => JSON.stringify(a))
        .join(' ')})\n\n${USAGE}`,
    );
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
  const logger = createLogger(config.logLevel, process.stderr);
  try {
    const applied = await migrate(databaseUrl, { logger });
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
