/**
 * What the steering tests (test/integration/steer-*.test.ts) share: waiting for an outcome, the queues they add jobs
 * to (closed after each test), and waiting until a fake is asked nothing more.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue } from 'bullmq';
import { afterEach } from 'vitest';
import type { SyncJobData, SyncJobResult } from '../../jobs/queues.ts';
import type { Harness } from './sync-harness.ts';

/** Looks every 100 ms until `look` finds something, for at most `ms`. */
export async function until<T>(
  what: string,
  look: () => Promise<T | null | undefined | false>,
  ms = 60_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const found = await look();
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

const queues: Queue[] = [];
afterEach(async () => {
  await Promise.all(queues.splice(0).map((q) => q.close()));
});

/** A queue of the harness's prefix, closed after the test. */
export function queueOf(harness: Harness, name: string): Queue<SyncJobData, SyncJobResult> {
  const queue = new Queue<SyncJobData, SyncJobResult>(name, { connection: harness.redis, prefix: harness.prefix });
  queues.push(queue);
  return queue;
}

/** The fake's request count stays put for `ms`: nothing reads the source any more. */
export async function requestsSettle(count: () => number, ms = 3000): Promise<number> {
  let before = count();
  for (;;) {
    await sleep(ms);
    if (count() === before) return before;
    before = count();
  }
}
