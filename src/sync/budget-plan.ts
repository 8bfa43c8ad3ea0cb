/**
 * The budget plan: how a source's daily request budget is shared between incremental runs and the long scans
 * (reconciliations, backfills) of an account too big to read in a day, and what pending work costs. Pure arithmetic,
 * unit-tested on its own: the limiter enforces the shares (src/http/rate-limiter.ts), `status` shows the plan, and
 * the dry runs of `backfill` and `reset` price their work with `budgetCost`.
 *
 * The rule: incremental runs may spend the whole budget; the other requests (the `bulk` share) together at most the
 * budget less the incremental reserve, in any window, so that the reserve is always there for incremental runs. A bulk scan refused by the budget is put back until a chunk of its share is free
 * (the budget is a rolling window, so its oldest requests keep leaving it), resumes from its saved progress, and so
 * spreads itself over as many windows as it needs while the incremental runs go on between its chunks.
 */
import { CronExpressionParser } from 'cron-parser';
import type { Schedule, SourceLimits } from '../config-fields.ts';
import type { SyncMode } from '../types.ts';

export const DAY_MS = 86_400_000;

/** Whose share of the daily budget a request takes: an incremental run's (the reserve too), or everyone else's. */
export type BudgetShare = 'incremental' | 'bulk';

export const shareOfMode = (mode: SyncMode | string): BudgetShare => (mode === 'incremental' ? 'incremental' : 'bulk');

type Budget = Pick<SourceLimits, 'dailyBudget' | 'incrementalReserve'>;

/** Requests a bulk scan may spend in one budget window: the budget less the reserve; null when there is no budget. */
export function bulkAllowance(limits: Budget): number | null {
  if (limits.dailyBudget === null) return null;
  return Math.max(1, limits.dailyBudget - (limits.incrementalReserve ?? 0));
}

/**
 * How many requests of its share a bulk scan refused by the budget waits to be free again before it resumes (5 % of
 * its allowance, at least 1): resuming for every single slot the window frees would make it take the queue back from
 * the incremental runs every few seconds, for one request each time.
 */
export function resumeChunk(limits: Budget): number {
  const allowance = bulkAllowance(limits);
  return allowance === null ? 1 : Math.max(1, Math.ceil(allowance * 0.05));
}

/** Requests an incremental run is planned at in the default reserve: one page, and a retry or a second page. */
const REQUESTS_PER_INCREMENTAL_RUN = 2;

/**
 * The default incremental reserve: the runs `schedule` starts in one budget window, two requests each, but never
 * more than half the budget. The 5-minute default schedule and Cin7's 5,000 a day give 576.
 */
export function defaultIncrementalReserve(schedule: Schedule, dailyBudget: number | null, windowMs = DAY_MS): number {
  if (dailyBudget === null) return 0;
  const runs = runsPerWindow(schedule, windowMs);
  return Math.min(Math.floor(dailyBudget / 2), Math.ceil(runs * REQUESTS_PER_INCREMENTAL_RUN));
}

function runsPerWindow(schedule: Schedule, windowMs: number): number {
  if ('off' in schedule) return 0;
  if ('every' in schedule) return windowMs / schedule.every;
  // The busiest window ahead: count the occurrences of the next week's first window (cron has no faster pattern
  // than a minute, so at most 1,440 a day).
  const from = new Date();
  const until = from.getTime() + windowMs;
  let runs = 0;
  for (const at of CronExpressionParser.parse(schedule.pattern, { currentDate: from }).take(2000)) {
    if (at.getTime() > until) break;
    runs++;
  }
  return runs;
}

/** Requests a scan needs to read `records` records: a page each (one more to see the end). */
export function requestsFor(records: number, limits: Pick<SourceLimits, 'recordsPerRequest'>): number {
  const perRequest = Math.max(1, limits.recordsPerRequest ?? 100);
  return records <= 0 ? 1 : Math.ceil(records / perRequest) + 1;
}

/** What some work costs of the budget: what `backfill --dry-run` and `reset --dry-run` print. */
export interface BudgetCost {
  requests: number;
  /** The budget, per `windowSeconds` (a day but in tests); null: there is none. */
  budget: number | null;
  /** Of it, what a reconciliation or backfill may spend per window (the budget less the incremental reserve). */
  allowance: number | null;
  windowSeconds: number;
  /** requests / budget (0.8 = 80 %); null without a budget. */
  shareOfBudget: number | null;
  /** Budget windows (days) the work spans at its allowance: 1 when it fits in one; null without a budget. */
  windows: number | null;
}

export function budgetCost(requests: number, limits: SourceLimits): BudgetCost {
  const allowance = bulkAllowance(limits);
  return {
    requests,
    budget: limits.dailyBudget,
    allowance,
    windowSeconds: (limits.budgetWindowMs ?? DAY_MS) / 1000,
    shareOfBudget: limits.dailyBudget === null ? null : requests / limits.dailyBudget,
    windows: allowance === null ? null : Math.max(1, Math.ceil(requests / allowance)),
  };
}

const number = (n: number) => n.toLocaleString('en-US');

/** "about 4,001 requests: 80 % of the daily budget of 5,000 (4,424 a day for reconciliations and backfills): 1 day" */
export function describeCost(cost: BudgetCost): string {
  const head = `about ${number(cost.requests)} requests`;
  if (cost.budget === null || cost.allowance === null || cost.windows === null) return `${head} (no daily budget)`;
  const day = cost.windowSeconds === DAY_MS / 1000;
  const per = day ? 'a day' : `per ${cost.windowSeconds} s`;
  const spans = day ? `${cost.windows} ${cost.windows === 1 ? 'day' : 'days'}` : `${cost.windows} budget windows`;
  const percent = Math.round((cost.shareOfBudget ?? 0) * 100);
  return `${head}: ${percent} % of the ${day ? 'daily ' : ''}budget of ${number(cost.budget)}${day ? '' : ` ${per}`} (${number(cost.allowance)} ${per} for reconciliations and backfills): ${spans}`;
}

/** One unfinished (or queued) scan the plan accounts for. */
export interface PendingScan {
  mode: string;
  /** Records it still has to read, by estimate; null when nothing says how many. */
  records: number | null;
}

export interface BudgetPlan {
  /** Requests the pending scans still need, by estimate. */
  pendingRequests: number;
  scans: { mode: string; records: number | null; requests: number }[];
  /** Requests a reconciliation or backfill may spend now: what its allowance and the whole budget both leave. */
  allowedNow: number;
  /** ... and per budget window (a day but in tests). */
  allowedPerWindow: number;
  /** Requests kept for incremental runs. */
  reserve: number;
  windowSeconds: number;
  /** When the pending scans should be done, at their allowance and the sustained rate; null when nothing is pending. */
  expectedCompletionAt: string | null;
}

/**
 * The plan for what is pending: what fits in what is left now goes at the sustained request rate, the rest at the
 * allowance per window as the window frees it. Null without a daily budget.
 */
export function planBudget(input: {
  pending: PendingScan[];
  limits: SourceLimits;
  /** Requests of every share the window holds now. */
  usedInWindow: number;
  /** Of them, the bulk share's. */
  bulkUsedInWindow: number;
  /** The tightest sustained rate of the source's windows (sustainedRate), per second. */
  requestsPerSecond: number | null;
  now: Date;
}): BudgetPlan | null {
  const { limits, now } = input;
  const allowance = bulkAllowance(limits);
  if (limits.dailyBudget === null || allowance === null) return null;
  const windowMs = limits.budgetWindowMs ?? DAY_MS;
  const scans = input.pending.map((scan) => ({ ...scan, requests: requestsFor(scan.records ?? 0, limits) }));
  const pendingRequests = scans.reduce((total, scan) => total + scan.requests, 0);
  const allowedNow = Math.max(0, Math.min(allowance - input.bulkUsedInWindow, limits.dailyBudget - input.usedInWindow));
  let completionMs: number | null = null;
  if (scans.length > 0) {
    const atRate = input.requestsPerSecond ? (pendingRequests / input.requestsPerSecond) * 1000 : 0;
    const later = Math.max(0, pendingRequests - allowedNow);
    completionMs = Math.max(atRate, Math.ceil(later / allowance) * windowMs);
  }
  return {
    pendingRequests,
    scans,
    allowedNow,
    allowedPerWindow: allowance,
    reserve: limits.dailyBudget - allowance,
    windowSeconds: windowMs / 1000,
    expectedCompletionAt: completionMs === null ? null : new Date(now.getTime() + completionMs).toISOString(),
  };
}
