/**
 * The request limiter shared by every worker process through Redis. Every HTTP request to a source takes a
 * slot here first, retries included.
 *
 * Why hand-written: BullMQ's limiter counts jobs, not requests, and has a single window; rate-limiter-flexible's
 * Redis limiters are fixed windows (2× the limit can pass across a window boundary when the server measures a
 * rolling window) and combine several limits only non-atomically; bottleneck's reservoir is not rolling either.
 * Cin7 enforces 3/s, 60/min and 5000/day together, so one Lua script checks every rolling window against a
 * sliding log (a sorted set of granted requests) and records the request only when all of them allow it.
 * The script reads Redis `TIME`, so the clocks of the worker machines do not matter.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import type { RateWindow } from '../config.ts';
import { AbortedError, RateLimitedError } from '../errors.ts';

const DAY_MS = 86_400_000;

// Redis' clock in ms, as `now`: the same for every worker machine.
const NOW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

// Sets `wait` to the ms until every (max, window ms) pair of ARGV from index `first` on admits one more request
// (0: they all do now), and `blocker` to the number of the pair that holds it back longest (1 for the first).
const BLOCKING = (first: number) => `
local wait, blocker = 0, 0
for i = ${first}, #ARGV, 2 do
  local max, window = tonumber(ARGV[i]), tonumber(ARGV[i + 1])
  local since = string.format('(%d', now - window)
  local used = redis.call('ZCOUNT', KEYS[1], since, '+inf')
  if used >= max then
    local oldest = redis.call('ZRANGEBYSCORE', KEYS[1], since, '+inf', 'WITHSCORES', 'LIMIT', used - max, 1)
    local free = tonumber(oldest[2]) + window - now
    if free > wait then wait, blocker = free, (i - ${first}) / 2 + 1 end
  end
end
`;

// KEYS: log, penalty. ARGV: member, retention ms, then pairs of (max, window ms).
// Returns {granted, wait ms, blocking limit}: limit 0 is the penalty, i the i-th pair.
const ACQUIRE = `${NOW}
local penalty = tonumber(redis.call('GET', KEYS[2]) or '0')
if penalty > now then return {0, penalty - now, 0} end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now - tonumber(ARGV[2])))
${BLOCKING(3)}
if wait > 0 then return {0, wait, blocker} end
redis.call('ZADD', KEYS[1], string.format('%d', now), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {1, 0, 0}
`;

// KEYS: log. ARGV: pairs of (max, window ms). Reads only. Returns {Redis time ms, wait ms}.
const NEXT_FREE = `${NOW}
${BLOCKING(1)}
return {now, wait}
`;

// KEYS: penalty. ARGV: ms. Never shortens a longer penalty already set.
const PENALIZE = `${NOW}
local ms = tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if now + ms > current then redis.call('SET', KEYS[1], string.format('%d', now + ms), 'PX', string.format('%d', ms)) end
return 1
`;

// KEYS: log, penalty. ARGV: window ms... Returns the penalty left, then the count in each window.
const USAGE = `${NOW}
local penalty = tonumber(redis.call('GET', KEYS[2]) or '0')
local result = {math.max(penalty - now, 0)}
for i = 1, #ARGV do
  result[i + 1] = redis.call('ZCOUNT', KEYS[1], string.format('(%d', now - tonumber(ARGV[i])), '+inf')
end
return result
`;

type ScriptFn = (...args: (string | number)[]) => Promise<unknown>;
const COMMANDS = {
  acquire: ['voucherSyncLimiterAcquire', ACQUIRE, 2],
  penalize: ['voucherSyncLimiterPenalize', PENALIZE, 1],
  usage: ['voucherSyncLimiterUsage', USAGE, 2],
  nextFree: ['voucherSyncLimiterNextFree', NEXT_FREE, 1],
} as const;

/** ioredis runs defined commands with EVALSHA and falls back to EVAL, and applies the connection's keyPrefix. */
function scripts(redis: Redis): Record<keyof typeof COMMANDS, ScriptFn> {
  const target = redis as unknown as Record<string, ScriptFn>;
  const entries = Object.entries(COMMANDS).map(([name, [command, lua, numberOfKeys]]) => {
    if (typeof target[command] !== 'function') redis.defineCommand(command, { lua, numberOfKeys });
    const fn = target[command]!.bind(redis);
    return [name, fn] as const;
  });
  return Object.fromEntries(entries) as Record<keyof typeof COMMANDS, ScriptFn>;
}

export interface RateLimiterOptions {
  /** A connection of its own is not required: the limiter only runs short scripts. */
  redis: Redis;
  /** Redis key prefix of this limiter, e.g. `voucher-sync:limit:cin7`; every worker of a source uses the same. */
  key: string;
  /** Rolling windows, all enforced together. */
  windows: RateWindow[];
  /** Requests allowed in any rolling 24 hours; null = no daily budget. */
  dailyBudget: number | null;
  /**
   * Added to every window, in ms (default 250): requests are spaced a little wider than the window so that the
   * time between taking a slot and the request reaching the server (event-loop pauses, network jitter) cannot make
   * the server see a burst over its limit; 25 and 100 ms proved too little with busy worker processes. It costs
   * little: sustained throughput is bound by the longer windows (60 per 60.25 s is 99.6 % of 60 per minute).
   */
  marginMs?: number;
}

export interface AcquireOptions {
  /** Stops waiting for a slot (AbortedError); no slot is taken. */
  signal?: AbortSignal;
  /** Longest total wait in ms (default: no limit); a longer one throws RateLimitedError with the wait. */
  maxWaitMs?: number;
}

export interface RateLimiterUsage {
  windows: { max: number; windowMs: number; used: number }[];
  /** Requests of the last rolling 24 hours; null when there is no daily budget (nothing is kept that long). */
  dailyUsed: number | null;
  dailyBudget: number | null;
  /** How long every worker still pauses after a 429, in ms. */
  penaltyMs: number;
}

export interface RateLimiter {
  /** Waits until every window allows one more request and records it. */
  acquire(options?: AcquireOptions): Promise<void>;
  /** After a 429: no worker acquires for `ms` from now (a longer penalty already set is kept). */
  penalize(ms: number): Promise<void>;
  usage(): Promise<RateLimiterUsage>;
  /**
   * When every window (its margin included, as acquire counts it) and the daily budget next admit a request, by
   * Redis' clock; null when they admit one now. The pause after a 429 is apart: `usage().penaltyMs`.
   */
  nextFreeAt(): Promise<Date | null>;
}

export function createRateLimiter(options: RateLimiterOptions): RateLimiter {
  const { redis, key, windows, dailyBudget, marginMs = 250 } = options;
  const run = scripts(redis);
  const logKey = `${key}:log`;
  const penaltyKey = `${key}:penalty`;
  const limits = windows.map((w) => ({
    max: w.max,
    windowMs: w.windowMs + marginMs,
    label: `${w.max} requests per ${w.windowMs} ms`,
  }));
  if (dailyBudget !== null)
    limits.push({ max: dailyBudget, windowMs: DAY_MS, label: `the daily budget of ${dailyBudget} requests` });
  const retentionMs = Math.max(1000, ...limits.map((l) => l.windowMs));
  const limitArgs = limits.flatMap((l) => [l.max, l.windowMs]);

  const describe = (blocker: number) =>
    blocker === 0 ? 'a pause after the source answered 429' : (limits[blocker - 1]?.label ?? 'the rate limit');

  return {
    async acquire({ signal, maxWaitMs = Number.POSITIVE_INFINITY } = {}) {
      const started = Date.now();
      for (;;) {
        if (signal?.aborted) throw new AbortedError('Stopped waiting for a rate-limit slot', { cause: signal.reason });
        const [granted, wait, blocker] = (await run.acquire(
          logKey,
          penaltyKey,
          randomUUID(),
          retentionMs,
          ...limitArgs,
        )) as number[];
        if (granted === 1) return;
        const waitMs = wait ?? 0;
        if (Date.now() - started + waitMs > maxWaitMs) {
          throw new RateLimitedError(
            `Rate limit ${key}: ${describe(blocker ?? -1)} allows the next request in ${waitMs} ms`,
            waitMs,
            { reason: dailyBudget !== null && blocker === limits.length ? 'daily_budget' : 'rate_limit' },
          );
        }
        try {
          await sleep(waitMs, undefined, { signal });
        } catch (error) {
          throw new AbortedError('Stopped waiting for a rate-limit slot', { cause: error });
        }
      }
    },

    async penalize(ms) {
      if (ms > 0) await run.penalize(penaltyKey, Math.ceil(ms));
    },

    async usage() {
      const windowArgs = windows.map((w) => w.windowMs);
      if (dailyBudget !== null) windowArgs.push(DAY_MS);
      const [penaltyMs = 0, ...counts] = (await run.usage(logKey, penaltyKey, ...windowArgs)) as number[];
      return {
        windows: windows.map((w, i) => ({ max: w.max, windowMs: w.windowMs, used: counts[i] ?? 0 })),
        dailyUsed: dailyBudget === null ? null : (counts[windows.length] ?? 0),
        dailyBudget,
        penaltyMs,
      };
    },

    async nextFreeAt() {
      const [now = 0, wait = 0] = (await run.nextFree(logKey, ...limitArgs)) as number[];
      return wait > 0 ? new Date(now + wait) : null;
    },
  };
}
