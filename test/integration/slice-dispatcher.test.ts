/**
 * The slice dispatcher against real Redis: it hands the run each slice's result once the slice is done,
 * also when the slice finishes between the moment the dispatcher reads the job and the moment it reads
 * its state (it then had no result yet).
 */
import { randomUUID } from 'node:crypto';
import { Queue, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { createSliceDispatcher, type SliceJobData } from '../../jobs/slices.ts';
import type { SliceResult, SliceTask } from '../../src/sync/run-slice.ts';
import { emptyCounters } from '../../src/types.ts';
import { REDIS_URL } from '../helpers/sync-harness.ts';

const prefix = `vs-test-${randomUUID().slice(0, 8)}`;
const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
const closing: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const close of closing.splice(0).reverse()) await close();
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
});

const task = (index: number): SliceTask => ({
  source: 'carecloud',
  stream: 'vouchers',
  mode: 'full',
  runId: '1',
  scanId: '1',
  key: 'plan',
  index,
  slice: { index },
});
const resultOf = (index: number): SliceResult => ({
  highMark: new Date(Date.UTC(2026, 0, 1 + index)).toISOString(),
  counters: { ...emptyCounters(), pages: index + 1 },
});

describe('slice dispatcher', () => {
  it('hands over the result of a slice that finishes just after its job was read', async () => {
    const queue = new Queue<SliceJobData, SliceResult>('slices', { connection: redis.duplicate(), prefix });
    closing.push(() => queue.close());
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const worker = new Worker<SliceJobData, SliceResult>(
      'slices',
      async (job: Job<SliceJobData, SliceResult>) => {
        await released;
        return resultOf(job.data.index);
      },
      { connection: redis.duplicate({ maxRetriesPerRequest: null }), prefix, concurrency: 3 },
    );
    closing.push(() => worker.close());
    // When the dispatcher first polls a slice (its second read: the first looks for failed slices to retry),
    // it gets the job as it is while it runs; then the slices finish, before it asks for the job's state.
    let first = true;
    const reads = new Map<string, number>();
    const racing = new Proxy(queue, {
      get(target, property, receiver) {
        if (property !== 'getJob') return Reflect.get(target, property, receiver) as unknown;
        return async (id: string) => {
          const job = await target.getJob(id);
          reads.set(id, (reads.get(id) ?? 0) + 1);
          if (first && reads.get(id) === 2 && job && !job.finishedOn) {
            first = false;
            release();
            await Promise.all(
              [0, 1, 2].map(async (i) => {
                for (let n = 0; n < 200 && !(await (await target.getJob(`plan-${i}`))?.isCompleted()); n++)
                  await new Promise((r) => setTimeout(r, 10));
              }),
            );
          }
          return job;
        };
      },
    });
    const got = new Map<number, SliceResult>();
    await createSliceDispatcher(racing, { pollMs: 20 }).run(
      [task(0), task(1), task(2)],
      async (t, result) => void got.set(t.index, result),
    );
    expect(first).toBe(false);
    expect([...got.entries()].sort(([a], [b]) => a - b)).toEqual([0, 1, 2].map((i) => [i, resultOf(i)]));
  });
});
