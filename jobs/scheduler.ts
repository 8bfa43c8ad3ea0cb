/**
 * Job Schedulers: per source, an incremental sync on its `<SOURCE>_SCHEDULE` and a reconciliation (a full scan) on
 * its `<SOURCE>_RECONCILE_SCHEDULE`. Upserting is idempotent, so every process may call this at start-up.
 */
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { JobsConfig, Schedule } from '../src/config.ts';
import type { ScheduledMode, SourceSettings } from '../src/types.ts';
import { jobOptions, type SyncJobData, type SyncJobResult } from './queues.ts';

export const schedulerId = (source: string, mode: ScheduledMode) => `${source}-${mode}`;

export async function scheduleSource(
  queue: Queue<SyncJobData, SyncJobResult>,
  settings: SourceSettings,
  jobs: JobsConfig,
): Promise<Record<ScheduledMode, Schedule>> {
  for (const mode of ['incremental', 'full'] as const) {
    const schedule = settings.schedules[mode];
    const id = schedulerId(queue.name, mode);
    if ('off' in schedule) {
      await queue.removeJobScheduler(id);
      continue;
    }
    const repeat = 'every' in schedule ? { every: schedule.every } : { pattern: schedule.pattern };
    await queue.upsertJobScheduler(id, repeat, {
      name: mode,
      data: { mode, requestedBy: 'scheduler' },
      opts: jobOptions(jobs),
    });
  }
  return settings.schedules;
}

/**
 * Removes the Job Schedulers of a source that is no longer configured (its credentials were removed), and the runs
 * they queued: left in Redis, they would go on queueing runs that a worker still holding the old settings would
 * take. Returns the ids of the schedulers removed.
 */
export async function unscheduleSource(source: string, connection: Redis, jobs: JobsConfig): Promise<string[]> {
  const queue = new Queue(source, { connection, prefix: jobs.prefix });
  try {
    const removed: string[] = [];
    for (const mode of ['incremental', 'full'] as const) {
      if (await queue.removeJobScheduler(schedulerId(source, mode))) removed.push(schedulerId(source, mode));
    }
    // A scheduler's run that is already queued (an `every` schedule queues its first one at once) goes too. A run
    // an operator asked for stays: it fails on its own, naming the missing credentials, when a worker takes it.
    const queued = await queue.getJobs(['waiting', 'delayed', 'prioritized']);
    for (const job of queued)
      if ((job.data as SyncJobData | undefined)?.requestedBy === 'scheduler') await job.remove();
    return removed;
  } finally {
    await queue.close();
  }
}
