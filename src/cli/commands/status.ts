/**
 * voucher-sync status [--json] [--watch [seconds]] [--check] [--source <name>]
 *
 * How every source stands, read from Postgres and Redis only: it works while the service is down, and says so.
 * It never creates or migrates the database: a database that is missing or not migrated is one line and exit 1.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Option, type Command } from 'commander';
import { Redis } from 'ioredis';
import { loadConfig, loadDotEnv } from '../../config.ts';
import { createPrisma } from '../../db/client.ts';
import { checkDatabase, DatabaseNotReadyError } from '../../status/check-database.ts';
import { formatStatus } from '../../status/format-status.ts';
import { readStatus } from '../../status/read-status.ts';
import type { StatusReport } from '../../status/types.ts';
import { scrubSecrets } from '../../secrets.ts';
import { RedisUnreachableError, waitForRedis } from '../../../jobs/queues.ts';
import { act, sourceOption, UsageError } from '../command-kit.ts';

const DEFAULT_WATCH_SECONDS = 5;

interface StatusArgs {
  json: boolean;
  /** Seconds between reports; null = one report. */
  watch: number | null;
  check: boolean;
  source: string | null;
}

export function register(program: Command): void {
  program
    .command('status')
    .description(
      'how every source stands: state, freshness, progress and ETA, last error (works while the service is down)',
    )
    .option('--json', 'the report as JSON (fields: docs/status.md)', false)
    .addOption(
      new Option(
        '--watch [seconds]',
        `read it again every few seconds (default ${DEFAULT_WATCH_SECONDS}); Ctrl-C stops`,
      ).argParser((value) => {
        const seconds = Number(value);
        if (!/^\d+(\.\d+)?$/.test(value) || seconds < 1)
          throw new UsageError(`--watch takes a number of seconds, at least 1 (got "${value}")`);
        return seconds;
      }),
    )
    .option('--check', 'exit 1 when a configured source is failing or stale, else 0 (for cron jobs and probes)', false)
    .addOption(sourceOption({ required: false }).hideHelp(false))
    .action(
      act(async (options: { json: boolean; watch?: number | true; check: boolean; source?: string }) => {
        const watchSeconds = options.watch === true ? DEFAULT_WATCH_SECONDS : (options.watch ?? null);
        if (options.check && watchSeconds !== null)
          throw new UsageError('--check gives one exit code for one report: it cannot be combined with --watch');
        return status({
          json: options.json,
          watch: watchSeconds,
          check: options.check,
          source: options.source ?? null,
        });
      }),
    );
}

/**
 * --check: a configured source that is stale, or whose last finished run failed, fails the check — also while a
 * retry is under way (state `running`), so that a source failing every run cannot pass by being probed mid-run.
 */
function checkPasses(report: StatusReport): boolean {
  return report.sources.every((s) => !s.configured || (s.consecutiveFailures === 0 && !s.stale));
}

async function status(args: StatusArgs): Promise<number> {
  loadDotEnv();
  const config = loadConfig();
  const databaseUrl = config.databaseUrl.reveal();
  const redisUrl = config.redisUrl.reveal();
  try {
    await checkDatabase(databaseUrl);
    await waitForRedis(redisUrl);
  } catch (error) {
    if (!(error instanceof DatabaseNotReadyError || error instanceof RedisUnreachableError)) throw error;
    console.error(scrubSecrets(error.message));
    return 1;
  }
  const db = createPrisma(databaseUrl, { max: 4 });
  // Fails a command rather than retrying it for ever: a report that cannot be read says so.
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  redis.on('error', () => undefined);
  const read = async () => {
    const report = await readStatus({ db, redis, config });
    return args.source === null
      ? report
      : { ...report, sources: report.sources.filter((s) => s.source === args.source) };
  };
  try {
    if (args.watch === null) {
      const report = await read();
      console.log(args.json ? JSON.stringify(report, null, 2) : formatStatus(report));
      return args.check && !checkPasses(report) ? 1 : 0;
    }
    await watch(read, args.json, args.watch);
    return 0;
  } finally {
    await db.$disconnect();
    redis.disconnect();
  }
}

/**
 * Reads a report every `seconds` until Ctrl-C: on a terminal, redrawn in place; otherwise (a log, a pipe) each
 * report printed after the last, JSON one per line. A report that cannot be read is said and tried again.
 */
async function watch(read: () => Promise<StatusReport>, json: boolean, seconds: number): Promise<void> {
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const terminal = process.stdout.isTTY === true;
  try {
    while (!controller.signal.aborted) {
      let text: string;
      try {
        const report = await read();
        text = json ? JSON.stringify(report, null, terminal ? 2 : undefined) : formatStatus(report);
      } catch (error) {
        text = `could not read the status: ${scrubSecrets(error instanceof Error ? error.message : String(error))}`;
      }
      // Clear the screen and go home, then draw: the report stays where the eye expects it.
      if (terminal) process.stdout.write('\x1b[H\x1b[2J');
      console.log(json || terminal ? text : `${text}\n`);
      await sleep(seconds * 1000, undefined, { signal: controller.signal }).catch(() => undefined);
    }
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}
