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
 *
 * A slot is granted before its request is sent, and the two can be far apart: the worker's event loop may be busy
 * with the page it fetched before (the next one is fetched ahead meanwhile) or a connection may take long to open.
 * Counted from the grant, a request that left late and the next ones that left on time reach the server closer
 * together than its window: 6 in a second of a limit of 5 were seen with two workers. So the HTTP client reports
 * when the request left (`sent`), and the slot is counted from then on.
 *
 * The daily budget is shared (src/sync/budget-plan.ts): a request of an incremental run may take any slot of it; the
 * others (the `bulk` share: reconciliations, backfills, side runs), logged a second time in a log of their own, at
 * most the budget less the incremental reserve. A bulk request the budget refuses is not waited for in line: its run
 * is put back until a chunk of its share is free again, so that it gives its queue to the incremental runs meanwhile.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import type { RateWindow } from '../config.ts';
import { AbortedError, RateLimitedError } from '../errors.ts';
import { bulkAllowance, resumeChunk, type BudgetShare } from '../sync/budget-plan.ts';

const DAY_MS = 86_400_000;

// Redis' clock in ms, as `now`: the same for every worker machine.
const NOW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

// Sets `wait` to the ms until every (log, max, window ms, need) limit of ARGV from index `first` on admits one more
// request (0: they all do now), and `blocker` to the number of the limit that holds it back longest (1 for the
// first). `log` is the index in KEYS of the log it counts: 1, every request; 3, the bulk share's. A full window's
// wait lasts until `need` of its slots are free again (1 but for the bulk share of the budget).
const BLOCKING = (first: number) => `
local wait, blocker = 0, 0
for i = ${first}, #ARGV, 4 do
  local log, max, window, need = KEYS[tonumber(ARGV[i])], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])
  local since = string.format('(%d', now - window)
  local used = redis.call('ZCOUNT', log, since, '+inf')
  if used >= max then
    local nth = math.min(used - max + need - 1, used - 1)
    local oldest = redis.call('ZRANGEBYSCORE', log, since, '+inf', 'WITHSCORES', 'LIMIT', nth, 1)
    local free = tonumber(oldest[2]) + window - now
    if free > wait then wait, blocker = free, (i - ${first}) / 4 + 1 end
  end
end
`;

// KEYS: log, penalty, bulk log. ARGV: member, retention ms, bulk (1 or 0), then limits of (log, max, window ms, need).
// Returns {granted, wait ms, blocking limit}: limit 0 is the penalty, i the i-th limit. A bulk request is logged in
// both logs.
const ACQUIRE = `${NOW}
local penalty = tonumber(redis.call('GET', KEYS[2]) or '0')
if penalty > now then return {0, penalty - now, 0} end
local expired = string.format('%d', now - tonumber(ARGV[2]))
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', expired)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', expired)
${BLOCKING(4)}
if wait > 0 then return {0, wait, blocker} end
redis.call('ZADD', KEYS[1], string.format('%d', now), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if ARGV[3] == '1' then
  redis.call('ZADD', KEYS[3], string.format('%d', now), ARGV[1])
  redis.call('PEXPIRE', KEYS[3], ARGV[2])
end
return {1, 0, 0}
`;

// KEYS: log, bulk log. ARGV: member. The slot's request left now: its windows run from now on. Only ever later (GT),
// and only for a slot still logged (XX).
const SENT = `${NOW}
redis.call('ZADD', KEYS[1], 'XX', 'GT', string.format('%d', now), ARGV[1])
redis.call('ZADD', KEYS[2], 'XX', 'GT', string.format('%d', now), ARGV[1])
return 1
`;

// KEYS: log, (unused), bulk log. ARGV: limits of (log, max, window ms, need). Reads only. Returns {Redis time ms,
// wait ms}.
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

// KEYS: log, penalty, bulk log. ARGV: window ms... Returns the penalty left, the count in each window, and the bulk
// log's count in the last window.
const USAGE = `${NOW}
local penalty = tonumber(redis.call('GET', KEYS[2]) or '0')
local result = {math.max(penalty - now, 0)}
for i = 1, #ARGV do
  result[i + 1] = redis.call('ZCOUNT', KEYS[1], string.format('(%d', now - tonumber(ARGV[i])), '+inf')
end
if #ARGV > 0 then
  result[#ARGV + 2] = redis.call('ZCOUNT', KEYS[3], string.format('(%d', now - tonumber(ARGV[#ARGV])), '+inf')
end
return result
`;

type ScriptFn = (...args: (string | number)[]) => Promise<unknown>;
const COMMANDS = {
  acquire: ['voucherSyncLimiterAcquire2', ACQUIRE, 3],
  sent: ['voucherSyncLimiterSent', SENT, 2],
  penalize: ['voucherSyncLimiterPenalize', PENALIZE, 1],
  usage: ['voucherSyncLimiterUsage2', USAGE, 3],
  nextFree: ['voucherSyncLimiterNextFree2', NEXT_FREE, 3],
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
  /** Requests of the daily budget only incremental requests may take (default 0). */
  incrementalReserve?: number;
  /** The budget's rolling window in ms (default 24 hours; shorter only in tests of the budget plan). */
  budgetWindowMs?: number;
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
  /**
   * Longest single wait in ms (default: no limit): a slot further away throws RateLimitedError with the wait. Waits
   * are judged one at a time, not added up: under contention a request waits several times for a slot another worker
   * took first, each wait as short as the window allows, and giving the worker back would not make the shared pace
   * any faster.
   */
  maxWaitMs?: number;
  /**
   * Whose share of the daily budget the request takes (default `bulk`: not the incremental reserve). A bulk request
   * the budget refuses throws at once (RateLimitedError, reason `daily_budget`), its wait lasting until a chunk of
   * the bulk share is free (see resumeChunk).
   */
  share?: BudgetShare;
}

export interface RateLimiterUsage {
  windows: { max: number; windowMs: number; used: number }[];
  /** Requests of the last rolling 24 hours; null when there is no daily budget (nothing is kept that long). */
  dailyUsed: number | null;
  /** Of them, the bulk share's (reconciliations, backfills, side runs); null when there is no daily budget. */
  bulkUsed: number | null;
  dailyBudget: number | null;
  /** The budget's window in ms (24 hours but in tests). */
  budgetWindowMs: number;
  /** How long every worker still pauses after a 429, in ms. */
  penaltyMs: number;
}

export interface RateLimiter {
  /** Waits until every window allows one more request and records it; returns the slot's id, for `sent`. */
  acquire(options?: AcquireOptions): Promise<string>;
  /**
   * The request of slot `slot` has just left: its windows are counted from now (by Redis' clock), no longer from
   * when the slot was granted. A slot never reported counts from its grant.
   */
  sent(slot: string): Promise<void>;
  /** After a 429: no worker acquires for `ms` from now (a longer penalty already set is kept). */
  penalize(ms: number): Promise<void>;
  usage(): Promise<RateLimiterUsage>;
  /**
   * When every window (its margin included, as acquire counts it) and the daily budget next admit a request, by
   * Redis' clock; null when they admit one now. The pause after a 429 is apart: `usage().penaltyMs`.
   */
  nextFreeAt(share?: BudgetShare): Promise<Date | null>;
}

export function createRateLimiter(options: RateLimiterOptions): RateLimiter {
  const { redis, key, windows, dailyBudget, marginMs = 250 } = options;
  const budgetWindowMs = options.budgetWindowMs ?? DAY_MS;
  const run = scripts(redis);
  const logKey = `${key}:log`;
  const penaltyKey = `${key}:penalty`;
  const bulkKey = `${key}:bulk`;
  const keys = [logKey, penaltyKey, bulkKey];
  const ALL = 1;
  const BULK = 3;
  const limits = windows.map((w) => ({
    log: ALL,
    max: w.max,
    windowMs: w.windowMs + marginMs,
    need: 1,
    label: `${w.max} requests per ${w.windowMs} ms`,
  }));
  const retentionMs = Math.max(1000, budgetWindowMs, ...limits.map((l) => l.windowMs));
  // The daily budget comes last: every request counts against it, and a bulk one against its share too.
  const budget = { dailyBudget, incrementalReserve: options.incrementalReserve };
  const allowance = bulkAllowance(budget);
  const limitsOf = (share: BudgetShare) => {
    if (dailyBudget === null) return limits;
    const label = `the daily budget of ${dailyBudget} requests`;
    const whole = { log: ALL, max: dailyBudget, windowMs: budgetWindowMs, need: 1, label };
    if (share === 'incremental') return [...limits, whole];
    const kept = dailyBudget - allowance!;
    const bulkLabel = `${label} (${allowance} for reconciliations and backfills, ${kept} kept for incremental runs)`;
    const need = resumeChunk(budget);
    return [
      ...limits,
      { ...whole, need, label: bulkLabel },
      { log: BULK, max: allowance!, windowMs: budgetWindowMs, need, label: bulkLabel },
    ];
  };
  const argsOf = (share: BudgetShare) => limitsOf(share).flatMap((l) => [l.log, l.max, l.windowMs, l.need]);

  return {
    async acquire({ signal, maxWaitMs = Number.POSITIVE_INFINITY, share = 'bulk' } = {}) {
      const shareLimits = limitsOf(share);
      const limitArgs = argsOf(share);
      const describe = (blocker: number) =>
        blocker === 0 ? 'a pause after the source answered 429' : (shareLimits[blocker - 1]?.label ?? 'the rate limit');
      for (;;) {
        if (signal?.aborted) throw new AbortedError('Stopped waiting for a rate-limit slot', { cause: signal.reason });
        const slot = randomUUID();
        const [granted, wait, blocker] = (await run.acquire(
          ...keys,
          slot,
          retentionMs,
          share === 'bulk' ? 1 : 0,
          ...limitArgs,
        )) as number[];
        if (granted === 1) return slot;
        const waitMs = wait ?? 0;
        const byBudget = dailyBudget !== null && (blocker ?? 0) > limits.length;
        // A bulk run waiting in line for the budget would hold its source's queue, and the incremental runs with it.
        if (waitMs > maxWaitMs || (byBudget && share === 'bulk')) {
          throw new RateLimitedError(
            `Rate limit ${key}: ${describe(blocker ?? -1)} allows the next request in ${waitMs} ms`,
            waitMs,
            { reason: byBudget ? 'daily_budget' : 'rate_limit' },
          );
        }
        try {
          await sleep(waitMs, undefined, { signal });
        } catch (error) {
          throw new AbortedError('Stopped waiting for a rate-limit slot', { cause: error });
        }
      }
    },

    async sent(slot) {
      await run.sent(logKey, bulkKey, slot);
    },

    async penalize(ms) {
      if (ms > 0) await run.penalize(penaltyKey, Math.ceil(ms));
    },

    async usage() {
      const windowArgs = windows.map((w) => w.windowMs);
      if (dailyBudget !== null) windowArgs.push(budgetWindowMs);
      const [penaltyMs = 0, ...counts] = (await run.usage(...keys, ...windowArgs)) as number[];
      return {
        windows: windows.map((w, i) => ({ max: w.max, windowMs: w.windowMs, used: counts[i] ?? 0 })),
        dailyUsed: dailyBudget === null ? null : (counts[windows.length] ?? 0),
        bulkUsed: dailyBudget === null ? null : (counts[windows.length + 1] ?? 0),
        dailyBudget,
        budgetWindowMs,
        penaltyMs,
      };
    },

    async nextFreeAt(share = 'incremental') {
      const [now = 0, wait = 0] = (await run.nextFree(...keys, ...argsOf(share))) as number[];
      return wait > 0 ? new Date(now + wait) : null;
    },
  };
}
