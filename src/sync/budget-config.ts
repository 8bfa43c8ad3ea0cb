/**
 * The budget plan's settings of a source (`<SOURCE>_INCREMENTAL_RESERVE`, `<SOURCE>_BUDGET_WINDOW`): their checks,
 * one line each naming the variable, and the limits they make. Shared by every source's config fragment that has a
 * daily budget, so that each declares the two variables and nothing more.
 */
import type { Env, Schedule, SourceLimits } from '../config-fields.ts';
import { defaultIncrementalReserve } from './budget-plan.ts';

/** Shortest budget window: under a second the rate windows (3/s) would be all there is. */
const MIN_WINDOW_MS = 1000;

export function budgetProblems(
  prefix: string,
  dailyBudget: number | null,
  reserve: number | undefined,
  windowMs: number,
  env: Env,
): string[] {
  const problems: string[] = [];
  if (reserve !== undefined && dailyBudget !== null && reserve >= dailyBudget) {
    problems.push(
      `${prefix}_INCREMENTAL_RESERVE must be less than ${prefix}_DAILY_BUDGET, or reconciliations and backfills could never run (got ${env[`${prefix}_INCREMENTAL_RESERVE`]} and ${env[`${prefix}_DAILY_BUDGET`] ?? dailyBudget})`,
    );
  }
  if (windowMs < MIN_WINDOW_MS) {
    problems.push(
      `${prefix}_BUDGET_WINDOW must be at least 1s; it is meant for tests, a real budget is 24h (got ${JSON.stringify(env[`${prefix}_BUDGET_WINDOW`])})`,
    );
  }
  return problems;
}

/** The limits' budget fields: the reserve as set, or enough for the incremental schedule. */
export function budgetSettings(
  schedule: Schedule,
  dailyBudget: number | null,
  reserve: number | undefined,
  windowMs: number,
): Pick<SourceLimits, 'incrementalReserve' | 'budgetWindowMs'> {
  return {
    incrementalReserve: reserve ?? defaultIncrementalReserve(schedule, dailyBudget, windowMs),
    budgetWindowMs: windowMs,
  };
}
