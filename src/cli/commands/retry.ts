/**
 * voucher-sync retry --source <name>
 *
 * Moves the source's failed jobs (those that used up their attempts, or failed for good) back to its queue, with their
 * attempts counted afresh, and says how many. Each resumes its scan from the saved progress, as any run does. Refused
 * on a paused source: the jobs would run at once, which the pause is there to prevent.
 */
import { Queue } from 'bullmq';
import type { Command } from 'commander';
import { createRedis, waitForRedis } from '../../../jobs/queues.ts';
import { readPause } from '../../db/source-control.ts';
import { act, EXIT, openContext, sourceOption } from '../command-kit.ts';

/** Failed jobs read per round: the failed set may be long. */
const BATCH = 100;

export function register(program: Command): void {
  program
    .command('retry')
    .description("move the source's failed jobs back to its queue")
    .addOption(sourceOption())
    .action(act(({ source }: { source: string }) => retry(source)));
}

async function retry(source: string): Promise<number> {
  const context = await openContext({ migrate: true });
  const { config, db } = context;
  try {
    const pause = await readPause(db, source);
    if (pause) {
      console.error(`${source} is paused: run voucher-sync resume --source ${source} first.`);
      return EXIT.failed;
    }
    await waitForRedis(config.redisUrl.reveal());
    const redis = createRedis(config.redisUrl.reveal());
    const queue = new Queue(source, { connection: redis, prefix: config.jobs.prefix });
    try {
      const moved = await retryFailed(queue);
      console.log(
        moved === 0
          ? `${source} has no failed jobs.`
          : `Moved ${moved} failed job${moved === 1 ? '' : 's'} of ${source} back to the queue (voucher-sync status --watch follows them).`,
      );
      return EXIT.ok;
    } finally {
      await queue.close();
      redis.disconnect();
    }
  } finally {
    await context.close();
  }
}

/** Each failed job back to waiting; one retried or removed meanwhile by someone else is not counted. */
async function retryFailed(queue: Queue): Promise<number> {
  let moved = 0;
  // A job that cannot move stays in the failed set: the next batch starts past those.
  let stuck = 0;
  for (;;) {
    // The moved ones leave the failed set, so each round reads from its start again.
    const jobs = await queue.getFailed(stuck, stuck + BATCH - 1);
    if (jobs.length === 0) return moved;
    for (const job of jobs) {
      try {
        await job.retry('failed');
        moved++;
      } catch {
        stuck++;
      }
    }
  }
}
