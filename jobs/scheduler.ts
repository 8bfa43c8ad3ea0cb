/**
 * Job Schedulers: per source, an incremental sync on its `<SOURCE>_SCHEDULE` and a reconciliation (a full scan) on
 * its `<SOURCE>_RECONCILE_SCHEDULE`. Upserting is idempotent, so every process may call this at start-up.
 */
import type { Queue } from 'bullmq';
import type { JobsConfig, Schedule } from '../src/config.ts';
import type { SourceSettings, SyncMode } from '../src/types.ts';
import { jobOptions, type SyncJobData, type SyncJobResult } from './queues.ts';

export const schedulerId = (source: string, mode: SyncMode) => `${source}-${mode}`;

export async function scheduleSource(
  queue: Queue<SyncJobData, SyncJobResult>,
  settings: SourceSettings,
  jobs: JobsConfig,
): Promise<Record<SyncMode, Schedule>> {
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
