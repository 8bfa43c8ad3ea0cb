/**
 * voucher-sync backfill --source <name> --from <date> --to <date> [--zone <IANA>] [--dry-run]
 *
 * Re-reads the vouchers whose cursor lies in a range — CareCloud `last_change`, Cin7 `CreatedDate` — through the
 * source's queue like `sync` (a worker runs in this process for its duration; any worker may read its slices), and
 * waits for it with progress. The run is the source's main run for its duration, moves no watermark and marks
 * nothing deleted (src/sync/run-sync.ts); a backfill stopped half-way resumes from its saved progress when asked
 * for again with the same range (and one of that range still queued is waited for, not doubled).
 * `--dry-run` prints what it would cost and changes nothing.
 */
import { randomUUID } from 'node:crypto';
import { Option, type Command } from 'commander';
import { Redis } from 'ioredis';
import { loadConfig, loadDotEnv, type Config } from '../../config.ts';
import { createPrisma } from '../../db/client.ts';
import { migrate } from '../../db/migrate.ts';
import { createLogger, type Logger } from '../../logger.ts';
import { sectionOf, sources } from '../../sources/index.ts';
import { checkDatabase, DatabaseNotReadyError } from '../../status/check-database.ts';
import { sustainedRate } from '../../status/eta.ts';
import { describeWork, estimateWork } from '../../status/estimate-work.ts';
import {
  backfillJobId,
  BackfillRangeError,
  describeLength,
  parseRange,
  rangeData,
  utcText,
} from '../../sync/backfill-range.ts';
import type { BackfillRange } from '../../types.ts';
import { scrubSecrets } from '../../secrets.ts';
import { RedisUnreachableError, waitForRedis } from '../../../jobs/queues.ts';
import { formatOutcomes, runOnce, type OnceCancel } from '../../../jobs/run-once.ts';
import { createSourceRuntimes } from '../../../jobs/runtime.ts';
import { startService } from '../../../jobs/service.ts';
import { act, EXIT, sourceOption, UsageError } from '../command-kit.ts';
import { operator } from '../operator.ts';
import { createSyncProgress } from '../sync-progress.ts';
import { readPause } from '../../db/source-control.ts';

interface BackfillOptions {
  source: string;
  from: string;
  to: string;
  zone: string;
  dryRun: boolean;
}

export function register(program: Command): void {
  program
    .command('backfill')
    .description(
      're-read the vouchers of a range (CareCloud by last_change, Cin7 by CreatedDate) through the queues, in slices, and wait for it; moves no watermark and marks nothing deleted',
    )
    .addOption(sourceOption())
    .requiredOption('--from <date>', 'start of the range, inclusive: ISO 8601 or YYYY-MM-DD')
    .requiredOption('--to <date>', 'end of the range, exclusive: ISO 8601 or YYYY-MM-DD')
    .addOption(
      new Option('--zone <IANA>', 'the zone of dates written without an offset (e.g. Europe/Prague)').default('UTC'),
    )
    .option('--dry-run', 'print the requests it would need and their share of the daily budget; change nothing', false)
    .addHelpText(
      'after',
      '\nA date without an offset is in --zone (UTC by default); the range understood is printed in UTC. A stopped\nbackfill resumes where it stood when asked for again with the same range.',
    )
    .action(act(backfill));
}

async function backfill(options: BackfillOptions): Promise<number> {
  let range: BackfillRange;
  try {
    range = parseRange(options, new Date());
  } catch (error) {
    if (error instanceof BackfillRangeError) throw new UsageError(error.message);
    throw error;
  }
  console.log(
    `range: ${utcText(range.from)} to ${utcText(range.to)} (UTC, --to exclusive; ${describeLength(range)}${range.to.getTime() > Date.now() ? '; ends in the future: reads to the newest record' : ''})`,
  );
  loadDotEnv();
  const config = loadConfig();
  const source = sources.find((s) => s.name === options.source)!;
  if (sectionOf(config, source) === null) {
    console.error(`${options.source} is not configured: set its credentials (see .env.example).`);
    return EXIT.failed;
  }
  const logger = createLogger(config.logLevel, process.stderr, { format: config.logFormat });
  return options.dryRun ? dryRun(config, logger, options.source, range) : run(config, logger, options.source, range);
}

/** What the backfill would cost. Reads the database without migrating it, and asks the source only for a count. */
async function dryRun(config: Config, logger: Logger, name: string, range: BackfillRange): Promise<number> {
  try {
    await checkDatabase(config.databaseUrl.reveal());
    await waitForRedis(config.redisUrl.reveal());
  } catch (error) {
    if (!(error instanceof DatabaseNotReadyError || error instanceof RedisUnreachableError)) throw error;
    console.error(scrubSecrets(error.message));
    return EXIT.failed;
  }
  const redis = new Redis(config.redisUrl.reveal(), { maxRetriesPerRequest: 1 });
  redis.on('error', () => undefined);
  const db = createPrisma(config.databaseUrl.reveal(), { max: 2 });
  try {
    // The source's limiter, shared with the workers: the count's few requests count against its limits too.
    const runtime = createSourceRuntimes(config, { redis, logger }).find((r) => r.name === name)!;
    const estimate = await estimateWork({
      source: name,
      stream: runtime.streams[0]!,
      client: runtime.client,
      db,
      limits: runtime.settings.limits,
      range,
    });
    console.log([`dry run: nothing changed, nothing queued`, ...describeWork(name, estimate, 'range')].join('\n'));
    return EXIT.ok;
  } finally {
    await db.$disconnect();
    redis.disconnect();
  }
}

async function run(config: Config, logger: Logger, name: string, range: BackfillRange): Promise<number> {
  await migrate(config.databaseUrl.reveal(), { logger });
  const paused = await pausedSince(config, name);
  if (paused) {
    console.error(`${name} is paused: no run is started until voucher-sync resume --source ${name}`);
    return EXIT.failed;
  }
  await waitForRedis(config.redisUrl.reveal());
  const service = await startService(config, logger, { schedulers: false, role: 'sync', only: [name] });
  const db = createPrisma(config.databaseUrl.reveal(), { max: 2 });
  try {
    const queue = service.queues.get(name)!;
    // A backfill of this range queued or under way (its command stopped, a service worker took it) is joined, not
    // doubled; else a new job, which resumes the saved scan of this range if there is one.
    const wanted = rangeData(range);
    const pending = (await queue.getJobs(['active', 'waiting', 'delayed', 'prioritized'])).find(
      (job) =>
        job?.data?.mode === 'backfill' && job.data.range?.from === wanted.from && job.data.range?.to === wanted.to,
    );
    if (pending)
      console.log(`a backfill of this range is already queued or under way (job ${pending.id}): waiting for it`);
    const jobId = pending?.id ?? `${backfillJobId(range)}-${randomUUID().slice(0, 8)}`;
    const definition = sources.find((s) => s.name === name)!;
    const rate = sustainedRate(definition.settings(sectionOf(config, definition)!).limits.windows);
    const progress = createSyncProgress();
    // Ctrl-C (or SIGTERM) cancels the backfill after its current page, like `sync`; asked for again, it resumes.
    const cancelling = new AbortController();
    const cancel: OnceCancel = { signal: cancelling.signal, db, by: '' };
    const onSignal = (signal: NodeJS.Signals) => {
      if (cancelling.signal.aborted) process.exit(EXIT.cancelled);
      cancel.by = operator(`voucher-sync backfill, ${signal}`);
      cancelling.abort();
      console.error('Cancelling: the backfill stops after its current page (asked for again, it resumes from there).');
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    const outcomes = await runOnce(
      service,
      config.redisUrl.reveal(),
      config.jobs.prefix,
      'backfill',
      'cli',
      { db, requestsPerSecond: () => rate, onUpdate: (view) => progress.update(view) },
      { range: rangeData(range), jobId },
      cancel,
    ).finally(() => {
      progress.stop();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    });
    console.log(formatOutcomes(outcomes));
    if (outcomes.some((o) => !o.ok && o.cancelled)) return EXIT.cancelled;
    return outcomes.every((o) => o.ok) ? EXIT.ok : EXIT.failed;
  } finally {
    await service.stop();
    await db.$disconnect();
  }
}

/** Whether the source is paused (`voucher-sync pause`): a paused source starts no run, a backfill neither. */
async function pausedSince(config: Config, name: string): Promise<boolean> {
  const db = createPrisma(config.databaseUrl.reveal(), { max: 1 });
  try {
    return (await readPause(db, name)) !== null;
  } finally {
    await db.$disconnect();
  }
}
