/**
 * npm run status -- [--json] [--watch [seconds]] [--check] [--source <name>]
 *
 * How every source stands, read from Postgres and Redis only: it works while the service is down, and says so.
 * It never creates or migrates the database: a database that is missing or not migrated is one line and exit 1.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { loadConfig, loadDotEnv } from '../config.ts';
import { createPrisma } from '../db/client.ts';
import { sourceNames } from '../sources/index.ts';
import { checkDatabase, DatabaseNotReadyError } from '../status/check-database.ts';
import { formatStatus } from '../status/format-status.ts';
import { readStatus } from '../status/read-status.ts';
import type { StatusReport } from '../status/types.ts';
import { scrubSecrets } from '../secrets.ts';
import { RedisUnreachableError, waitForRedis } from '../../jobs/queues.ts';
import { HelpRequested, runCli, UsageError, usageErrorFrom } from './run-cli.ts';

const DEFAULT_WATCH_SECONDS = 5;

const USAGE = `Usage: npm run status -- [--json] [--watch [seconds]] [--check] [--source <${sourceNames.join('|')}>]

  --json      the report as JSON (fields: docs/status.md)
  --watch     read it again every few seconds (default ${DEFAULT_WATCH_SECONDS}); Ctrl-C stops
  --check     exit 1 when a configured source is failing or stale, else 0 (for cron jobs and probes)
  --source    only this source`;

interface StatusArgs {
  json: boolean;
  /** Seconds between reports; null = one report. */
  watch: number | null;
  check: boolean;
  source: string | null;
}

function parseStatusArgs(args: string[]): StatusArgs {
  // --watch takes an optional value, which parseArgs cannot express: a bare --watch gets the default.
  const normalized = args.map((arg, i) =>
    arg === '--watch' && (args[i + 1] === undefined || args[i + 1]!.startsWith('-'))
      ? `--watch=${DEFAULT_WATCH_SECONDS}`
      : arg,
  );
  let values;
  try {
    ({ values } = parseArgs({
      args: normalized,
      options: {
        json: { type: 'boolean', default: false },
        watch: { type: 'string' },
        check: { type: 'boolean', default: false },
        source: { type: 'string' },
        help: { type: 'boolean' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    usageErrorFrom(error);
  }
  if (values.help) throw new HelpRequested();
  let watch: number | null = null;
  if (values.watch !== undefined) {
    watch = Number(values.watch);
    if (!/^\d+(\.\d+)?$/.test(values.watch) || watch < 1)
      throw new UsageError(`--watch takes a number of seconds, at least 1 (got "${values.watch}")`);
  }
  if (values.check && watch !== null)
    throw new UsageError('--check gives one exit code for one report: it cannot be combined with --watch');
  if (values.source !== undefined && !sourceNames.includes(values.source))
    throw new UsageError(`--source must be one of ${sourceNames.join(', ')} (got "${values.source}")`);
  return { json: values.json, watch, check: values.check, source: values.source ?? null };
}

/**
 * --check: a configured source that is stale, or whose last finished run failed, fails the check — also while a
 * retry is under way (state `running`), so that a source failing every run cannot pass by being probed mid-run.
 */
function checkPasses(report: StatusReport): boolean {
  return report.sources.every((s) => !s.configured || (s.consecutiveFailures === 0 && !s.stale));
}

runCli(USAGE, async () => {
  const args = parseStatusArgs(process.argv.slice(2));
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
});

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
