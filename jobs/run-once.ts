/**
 * One run per source through the real queues, waited for: what `npm run sync` and `npm run demo -- --once`
 * do. The job queues behind any run of that source already under way (global concurrency 1), so what it
 * reports is at least as fresh as the moment it was asked.
 */
import { randomUUID } from 'node:crypto';
import { QueueEvents } from 'bullmq';
import { scrubSecrets } from '../src/secrets.ts';
import type { SyncMode } from '../src/types.ts';
import { createRedis, type SyncJobData, type SyncJobResult } from './queues.ts';
import type { Service } from './service.ts';

export type OnceOutcome =
  { source: string; ok: true; result: SyncJobResult } | { source: string; ok: false; error: string };

export async function runOnce(
  service: Service,
  redisUrl: string,
  prefix: string,
  mode: SyncMode,
  requestedBy: SyncJobData['requestedBy'],
): Promise<OnceOutcome[]> {
  return Promise.all(
    [...service.queues].map(async ([source, queue]): Promise<OnceOutcome> => {
      const connection = createRedis(redisUrl);
      const events = new QueueEvents(source, { connection, prefix });
      try {
        await events.waitUntilReady();
        const job = await queue.add(mode, { mode, requestedBy }, { jobId: `${requestedBy}-${mode}-${randomUUID()}` });
        const result = (await job.waitUntilFinished(events)) as SyncJobResult;
        return { source, ok: true, result };
      } catch (error) {
        return { source, ok: false, error: scrubSecrets(error instanceof Error ? error.message : String(error)) };
      } finally {
        await events.close();
        connection.disconnect();
      }
    }),
  );
}

export function formatOutcomes(outcomes: OnceOutcome[]): string {
  const lines = outcomes.map((o) => {
    if (!o.ok) return `${o.source.padEnd(10)} FAILED  ${o.error}`;
    const c = o.result.counters;
    return `${o.source.padEnd(10)} ok      fetched ${c.fetched}, inserted ${c.inserted}, updated ${c.updated}, unchanged ${c.unchanged}, rejected ${c.rejected}, deleted ${c.deleted}, ${c.apiCalls} API calls, ${(o.result.durationMs / 1000).toFixed(1)} s`;
  });
  return lines.join('\n');
}
