/**
 * voucher-sync cancel --source <name> [--wait <seconds>]
 *
 * Stops the source's main run under way after its current page, in whatever process it runs (jobs/cancel-run.ts): its
 * ledger row becomes `cancelled`, its job is not retried, its slices stop too, and the next run resumes the scan from
 * its saved progress. A run held back (waiting) is cancelled at once. With nothing under way it says so, exit 0.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Option, type Command } from 'commander';
import { Queue } from 'bullmq';
import { createRedis, RedisUnreachableError, waitForRedis } from '../../../jobs/queues.ts';
import { cancelSourceRun } from '../../../jobs/cancel-run.ts';
import { CANCEL_POLL_MS } from '../../../jobs/cancel-watch.ts';
import type { Db } from '../../db/client.ts';
import type { CancelledRow } from '../../db/source-control.ts';
import { act, openContext, sourceOption, wholeNumber } from '../command-kit.ts';
import { operator } from '../operator.ts';

const DEFAULT_WAIT_SECONDS = 30;

export function register(program: Command): void {
  program
    .command('cancel')
    .description("stop the source's run under way after its current page; the next run resumes from its saved progress")
    .addOption(sourceOption())
    .addOption(
      new Option('--wait <seconds>', 'how long to wait for the run to stop (0: do not wait)')
        .argParser(wholeNumber(0, 3600))
        .default(DEFAULT_WAIT_SECONDS),
    )
    .action(act(({ source, wait }: { source: string; wait: number }) => cancel(source, wait)));
}

async function cancel(source: string, waitSeconds: number): Promise<number> {
  const context = await openContext({ migrate: true });
  const { config, db } = context;
  let queue: Queue | null = null;
  let redis: ReturnType<typeof createRedis> | null = null;
  try {
    try {
      await waitForRedis(config.redisUrl.reveal(), { timeoutMs: 5_000 });
      redis = createRedis(config.redisUrl.reveal());
      queue = new Queue(source, { connection: redis, prefix: config.jobs.prefix });
    } catch (error) {
      if (!(error instanceof RedisUnreachableError)) throw error;
      // Postgres carries the request: a queued job completes as cancelled, reading nothing, when a worker takes it.
      console.error(`${error.message}; the request is recorded in the database all the same`);
    }
    const rows = await cancelSourceRun(db, queue, { source, by: operator('voucher-sync cancel') });
    if (rows.length === 0) {
      console.log(`Nothing to cancel: no run of ${source} is under way.`);
      return 0;
    }
    for (const row of rows.filter((r) => r.status === 'cancelled'))
      console.log(`${source}: run ${row.logicalRunId} (${row.mode}) was waiting; cancelled.`);
    const reading = rows.filter((r) => r.status === 'running');
    if (reading.length === 0) return 0;
    const ids = reading.map((r) => `${r.logicalRunId} (${r.mode})`).join(', ');
    if (waitSeconds === 0) {
      console.log(`${source}: run ${ids} asked to stop after its current page.`);
      return 0;
    }
    console.error(`${source}: run ${ids} asked to stop after its current page; waiting for it…`);
    const ended = await waitForEnd(db, reading, waitSeconds * 1000);
    console.log(
      ended === null
        ? `${source}: run ${ids} has not stopped yet after ${waitSeconds} s; it stops after its current page (voucher-sync status shows it).`
        : `${source}: run ${ids} ${ended === 'cancelled' ? 'cancelled' : `ended ${ended}`}; the next run resumes the scan from its saved progress.`,
    );
    return 0;
  } finally {
    await queue?.close();
    redis?.disconnect();
    await context.close();
  }
}

/** The status the rows ended with once none is running, or null after `waitMs`. */
async function waitForEnd(db: Db, rows: CancelledRow[], waitMs: number): Promise<string | null> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const now = await db.syncRun.findMany({ where: { id: { in: rows.map((r) => r.id) } }, select: { status: true } });
    if (now.every((r) => r.status !== 'running')) return now.at(-1)?.status ?? 'cancelled';
    if (Date.now() > deadline) return null;
    await sleep(Math.min(500, CANCEL_POLL_MS));
  }
}
