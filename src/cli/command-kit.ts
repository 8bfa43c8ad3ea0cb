/**
 * What every command of `voucher-sync` shares (src/cli/program.ts): how a command says its outcome, how a
 * `--source` is read, and the context most commands open — configuration, logger, database.
 *
 * Exit codes a script can rely on: 0 done, 1 failed (the run, the database, the configuration), 2 bad arguments
 * (commander's own errors and every UsageError), 130 cancelled by Ctrl-C.
 */
import { InvalidArgumentError, Option } from 'commander';
import { loadConfig, loadDotEnv, type Config } from '../config.ts';
import { createPrisma, type Db } from '../db/client.ts';
import { migrate } from '../db/migrate.ts';
import { createLogger, type Logger } from '../logger.ts';
import { sourceNames } from '../sources/index.ts';

export const EXIT = { ok: 0, failed: 1, usage: 2, cancelled: 130 } as const;

/** A bad argument found after parsing (a date before another, a source that is not configured): exit 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** `--source <name>`, one of the registered sources (and `all` when the command can take every source). */
export function sourceOption(options: { all?: boolean; required?: boolean } = {}): Option {
  const names = options.all ? [...sourceNames, 'all'] : [...sourceNames];
  const option = new Option('--source <name>', options.all ? 'a source, or "all"' : 'the source').choices(names);
  return options.required === false ? option : option.makeOptionMandatory();
}

/** An argument parser for a whole number in [min, max], for commander's `argParser`. */
export function wholeNumber(min: number, max = Number.MAX_SAFE_INTEGER): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < min || n > max)
      throw new InvalidArgumentError(
        `a whole number from ${min}${max < Number.MAX_SAFE_INTEGER ? ` to ${max}` : ''} is expected.`,
      );
    return n;
  };
}

export interface CommandContext {
  config: Config;
  logger: Logger;
  db: Db;
  close(): Promise<void>;
}

/**
 * Configuration from the environment (and .env), a logger on stderr so that stdout carries only the result, and
 * the database — migrated when `migrate` (a missing database is refused: only `db:migrate --create` makes one).
 */
export async function openContext(options: { migrate?: boolean } = {}): Promise<CommandContext> {
  loadDotEnv();
  const config = loadConfig();
  const logger = createLogger(config.logLevel, process.stderr, { format: config.logFormat });
  if (options.migrate) await migrate(config.databaseUrl.reveal(), { logger });
  const db = createPrisma(config.databaseUrl.reveal(), { max: 4 });
  return { config, logger, db, close: () => db.$disconnect() };
}

/** Wraps a command's action: what it returns is the exit code (undefined: 0); what it throws, program.ts reports. */
export function act<A extends unknown[]>(
  action: (...args: A) => Promise<number | void>,
): (...args: A) => Promise<void> {
  return async (...args) => {
    process.exitCode = (await action(...args)) ?? EXIT.ok;
  };
}
