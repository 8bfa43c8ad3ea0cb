/**
 * Heartbeats: every service process (workers, scheduler, a `npm run sync`) says it is alive by keeping a key of
 * its own under the queue prefix, `<prefix>:heartbeat:<id>`, rewritten every interval with a TTL of about three
 * intervals, and deleted when it stops. A process that dies stops rewriting it and the key lapses, so `npm run
 * status` can tell "the service is down" from "the service is idle" without asking any process.
 *
 * The keys are also listed in a sorted set, `<prefix>:heartbeats`, so that reading them needs no SCAN over the
 * whole Redis (which BullMQ fills with job keys). The set's scores are only for sweeping out ids long gone:
 * liveness is the key's own TTL, which Redis keeps, so the clocks of the machines do not matter.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';

export type ServiceRole = 'all' | 'worker' | 'scheduler' | 'sync';

/** What a heartbeat holds: who the process is, never a secret. */
export interface Heartbeat {
  role: ServiceRole;
  host: string;
  pid: number;
  /** The sources it serves. */
  sources: string[];
  startedAt: string;
}

export interface HeartbeatOptions {
  /** How often the key is rewritten, in ms (default 10 s). */
  intervalMs?: number;
  /** How long the key outlives its last rewrite, in ms (default three intervals). */
  ttlMs?: number;
  /** A rewrite that failed (Redis away); the next interval tries again. */
  onError?: (error: Error) => void;
}

export interface HeartbeatHandle {
  /** This process's id in the heartbeat keys. */
  id: string;
  /** Stops rewriting and deletes the key. */
  stop(): Promise<void>;
}

/** Ids of processes gone longer than this are swept out of the index (their keys are long expired). */
const SWEEP_AFTER_MS = 3_600_000;

export const heartbeatKey = (prefix: string, id: string) => `${prefix}:heartbeat:${id}`;
const indexKey = (prefix: string) => `${prefix}:heartbeats`;

export async function startHeartbeat(
  redis: Redis,
  prefix: string,
  who: Pick<Heartbeat, 'role' | 'sources'>,
  options: HeartbeatOptions = {},
): Promise<HeartbeatHandle> {
  const { intervalMs = 10_000, onError = () => undefined } = options;
  const ttlMs = options.ttlMs ?? 3 * intervalMs;
  // A random id: in containers every process may be pid 1 on a host of its own name, or share both after a restart.
  const id = randomUUID();
  const value: Heartbeat = {
    role: who.role,
    host: hostname(),
    pid: process.pid,
    sources: [...who.sources],
    startedAt: new Date().toISOString(),
  };
  const text = JSON.stringify(value);
  const beat = () =>
    redis
      .multi()
      .set(heartbeatKey(prefix, id), text, 'PX', ttlMs)
      .zadd(indexKey(prefix), Date.now(), id)
      .zremrangebyscore(indexKey(prefix), '-inf', Date.now() - SWEEP_AFTER_MS)
      .exec();
  // Not fatal: a Redis that is away now may be back by the next beat, and the service keeps running meanwhile.
  await beat().catch(onError);
  const timer = setInterval(() => void beat().catch(onError), intervalMs);
  timer.unref();
  let stopping: Promise<void> | undefined;
  return {
    id,
    stop() {
      stopping ??= (async () => {
        clearInterval(timer);
        await redis.multi().del(heartbeatKey(prefix, id)).zrem(indexKey(prefix), id).exec();
      })();
      return stopping;
    },
  };
}

/** The live processes under a prefix: those whose key has not lapsed. */
export async function readHeartbeats(redis: Redis, prefix: string): Promise<(Heartbeat & { id: string })[]> {
  const ids = await redis.zrange(indexKey(prefix), 0, -1);
  if (ids.length === 0) return [];
  const values = await redis.mget(ids.map((id) => heartbeatKey(prefix, id)));
  const live: (Heartbeat & { id: string })[] = [];
  values.forEach((text, i) => {
    if (text === null) return;
    try {
      live.push({ ...(JSON.parse(text) as Heartbeat), id: ids[i]! });
    } catch {
      // Not ours to judge: a key another program wrote under our prefix is not a process of ours.
    }
  });
  return live.sort((a, b) => a.startedAt.localeCompare(b.startedAt));
}
