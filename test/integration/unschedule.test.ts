/**
 * A source whose credentials are removed is unscheduled at the next start: its Job Schedulers (and the run each had
 * queued for its next time) leave Redis, so no worker still holding the old settings goes on syncing it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startService, type Service } from '../../jobs/service.ts';
import { loadConfig } from '../../src/config.ts';
import { createHarness, type Harness } from '../helpers/sync-harness.ts';

let h: Harness | undefined;
let service: Service | undefined;

afterEach(async () => {
  await service?.stop();
  service = undefined;
  await h?.close();
  h = undefined;
});

describe('a source whose credentials are removed', () => {
  it('loses its schedulers and their queued runs at the next start; the other source keeps its own', async () => {
    h = await createHarness();
    service = await startService(h.config, h.logger, { workers: false });
    const cin7 = service.queues.get('cin7')!;
    expect((await cin7.getJobSchedulers()).map((s) => s.key).sort()).toEqual(['cin7-full', 'cin7-incremental']);
    expect(await cin7.getDelayedCount()).toBeGreaterThan(0);
    await service.stop();

    const withoutCin7 = Object.fromEntries(
      Object.entries(h.env).filter(([name]) => !/^CIN7_(USERNAME|API_KEY)$/.test(name)),
    );
    service = await startService(loadConfig(withoutCin7), h.logger, { workers: false });
    expect([...service.queues.keys()]).toEqual(['carecloud']);
    const { Queue } = await import('bullmq');
    const left = new Queue('cin7', { connection: h.redis, prefix: h.prefix });
    try {
      expect(await left.getJobSchedulersCount()).toBe(0);
      expect(await left.getJobCounts('waiting', 'delayed', 'prioritized')).toEqual({
        waiting: 0,
        delayed: 0,
        prioritized: 0,
      });
    } finally {
      await left.close();
    }
    expect(await service.queues.get('carecloud')!.getJobSchedulersCount()).toBe(2);
    expect(h.logLines.join('')).toContain('unscheduled: its credentials are no longer set');
  });
});
