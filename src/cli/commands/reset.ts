/**
 * voucher-sync reset --source <name> [--yes] [--dry-run]
 *
 * Forgets where a source stands — every stream's watermark, saved scan progress (and the keys an unfinished full scan
 * had seen) and last success — so that its next run is a first backfill. The vouchers are kept. It asks on a
 * terminal and refuses without --yes elsewhere; it holds the source's lock while it writes and refuses while a run is
 * under way or held back, since that run would write its watermark and progress back. `--dry-run` says what the next
 * run would cost and changes nothing.
 */
import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import { Redis } from 'ioredis';
import { loadConfig, loadDotEnv, type Config } from '../../config.ts';
import { createPrisma, type Db } from '../../db/client.ts';
import { abandonRunning, liveLedgerRow } from '../../db/ledger.ts';
import { acquireSourceLock, SourceBusyError } from '../../db/source-lock.ts';
import { forgetStreamStates } from '../../db/stream-state.ts';
import { clearScan } from '../../db/vanished.ts';
import { createLogger } from '../../logger.ts';
import { sectionOf, sources } from '../../sources/index.ts';
import { checkDatabase, DatabaseNotReadyError } from '../../status/check-database.ts';
import { describeWork, estimateWork } from '../../status/estimate-work.ts';
import { scrubSecrets } from '../../secrets.ts';
import { RedisUnreachableError, waitForRedis } from '../../../jobs/queues.ts';
import { createSourceRuntimes } from '../../../jobs/runtime.ts';
import { act, EXIT, sourceOption, UsageError } from '../command-kit.ts';

interface ResetOptions {
  source: string;
  yes: boolean;
  dryRun: boolean;
}

export function register(program: Command): void {
  program
    .command('reset')
    .description(
      "forget a source's watermark and saved progress so that its next run is a first backfill (the vouchers are kept)",
    )
    .addOption(sourceOption())
    .option('--yes', 'do not ask for confirmation (required when not on a terminal)', false)
    .option(
      '--dry-run',
      'say what the next run would cost (requests, share of the daily budget, time); change nothing',
      false,
    )
    .action(act(reset));
}

async function reset(options: ResetOptions): Promise<number> {
  loadDotEnv();
  const config = loadConfig();
  const databaseUrl = config.databaseUrl.reveal();
  try {
    await checkDatabase(databaseUrl);
    if (options.dryRun) await waitForRedis(config.redisUrl.reveal());
  } catch (error) {
    if (!(error instanceof DatabaseNotReadyError || error instanceof RedisUnreachableError)) throw error;
    console.error(scrubSecrets(error.message));
    return EXIT.failed;
  }
  const db = createPrisma(databaseUrl, { max: 2 });
  try {
    if (options.dryRun) return await dryRun(config, db, options.source);
    if (!options.yes && !(await confirmed(options.source))) {
      console.error(`not reset: ${options.source} keeps its watermark and saved progress`);
      return EXIT.failed;
    }
    return await forget(db, databaseUrl, options.source);
  } finally {
    await db.$disconnect();
  }
}

/** Asks on a terminal; elsewhere, without --yes, refuses (exit 2). */
async function confirmed(source: string): Promise<boolean> {
  if (!process.stdin.isTTY)
    throw new UsageError(`reset asks for confirmation and stdin is not a terminal: add --yes to reset ${source}`);
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(
      `Forget the watermark and saved progress of ${source}? Its next run re-reads everything (the vouchers are kept). [y/N] `,
    );
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}

async function forget(db: Db, databaseUrl: string, source: string): Promise<number> {
  let lock;
  try {
    lock = await acquireSourceLock(databaseUrl, source);
  } catch (error) {
    if (!(error instanceof SourceBusyError)) throw error;
    const live = await liveLedgerRow(db, source);
    const which = live ? ` (run ${live.logicalRunId ?? live.id}, ${live.mode})` : '';
    console.error(
      `a run of ${source} is under way${which}: it would write its watermark back; wait for it or cancel it (voucher-sync cancel --source ${source})`,
    );
    return EXIT.failed;
  }
  try {
    // With the lock held, a row still `running` is a dead worker's; one `waiting` belongs to a job that comes back.
    const live = await liveLedgerRow(db, source);
    if (live?.status === 'waiting') {
      const until = live.waitingUntil ? ` until ${live.waitingUntil.toISOString()}` : '';
      console.error(
        `run ${live.logicalRunId ?? live.id} of ${source} (${live.mode}) is waiting${until} and would write its progress back when it resumes: cancel it first (voucher-sync cancel --source ${source})`,
      );
      return EXIT.failed;
    }
    const now = new Date();
    const { before, seen } = await db.$transaction(async (tx) => {
      const states = await forgetStreamStates(tx, source, now);
      let keys = 0;
      for (const state of states) {
        const scanId = state.progress.full?.scanId;
        if (typeof scanId === 'string' && /^\d+$/.test(scanId)) keys += await clearScan(tx, BigInt(scanId));
        await abandonRunning(tx, source, state.stream, now);
      }
      return { before: states, seen: keys };
    });
    const kept = await db.voucher.count({ where: { source } });
    if (before.every((s) => s.watermark === null && Object.keys(s.progress).length === 0))
      console.log(`${source} had no watermark and no saved progress: its next run is a first backfill already.`);
    for (const state of before) {
      const scans = Object.keys(state.progress);
      console.log(
        `${source}/${state.stream}: forgot watermark ${state.watermark?.toISOString() ?? '(none)'} and saved progress of ${scans.length === 0 ? 'no scan' : scans.join(', ')}`,
      );
    }
    if (seen > 0) console.log(`dropped the ${seen} keys the unfinished full scan had seen`);
    console.log(`kept ${kept.toLocaleString('en-US')} vouchers; the next run of ${source} is a first backfill`);
    return EXIT.ok;
  } finally {
    await lock.release();
  }
}

/** The next run would be a first backfill: the whole list, counted as the source can cheaply, else as we hold it. */
async function dryRun(config: Config, db: Db, name: string): Promise<number> {
  const definition = sources.find((s) => s.name === name)!;
  if (sectionOf(config, definition) === null) {
    console.error(`${name} is not configured: set its credentials (see .env.example).`);
    return EXIT.failed;
  }
  const logger = createLogger(config.logLevel, process.stderr, { format: config.logFormat });
  const redis = new Redis(config.redisUrl.reveal(), { maxRetriesPerRequest: 1 });
  redis.on('error', () => undefined);
  try {
    const runtime = createSourceRuntimes(config, { redis, logger }).find((r) => r.name === name)!;
    const state = await db.syncState.findMany({ where: { source: name }, select: { stream: true, watermark: true } });
    const estimate = await estimateWork({
      source: name,
      stream: runtime.streams[0]!,
      client: runtime.client,
      db,
      limits: runtime.settings.limits,
      range: null,
    });
    const watermarks = state.map((s) => `${s.stream} ${s.watermark?.toISOString() ?? '(none)'}`).join(', ');
    console.log(
      [
        `dry run: nothing changed. Reset would forget the watermark (${watermarks || 'none yet'}) and saved progress of ${name}; its next run would be a first backfill:`,
        ...describeWork(name, estimate, 'list'),
      ].join('\n'),
    );
    return EXIT.ok;
  } finally {
    redis.disconnect();
  }
}
