/**
 * What the alerts watch of a source, and the events a change of it makes. Pure: the loop (alert-loop.ts) reads the
 * status, keeps the last health it sent in Redis and posts the events (webhook.ts).
 */
import type { SourceStatus } from '../status/types.ts';

/** The share of the daily budget above which an alert goes out. */
export const BUDGET_ALERT_SHARE = 0.8;

export interface SourceHealth {
  failing: boolean;
  stale: boolean;
  budgetHigh: boolean;
}

export const HEALTHY: SourceHealth = { failing: false, stale: false, budgetHigh: false };

export type AlertEvent = 'failing' | 'recovered' | 'stale' | 'fresh' | 'budget_high' | 'budget_ok';

/** Each flag, and the event of its turning on and off. */
export const TRANSITIONS: { flag: keyof SourceHealth; on: AlertEvent; off: AlertEvent }[] = [
  { flag: 'failing', on: 'failing', off: 'recovered' },
  { flag: 'stale', on: 'stale', off: 'fresh' },
  { flag: 'budgetHigh', on: 'budget_high', off: 'budget_ok' },
];

export interface HealthRules {
  /** ALERT_FAILING_RUNS: a source fails once this many runs in a row failed. */
  failingRuns: number;
}

/** Stale as readStatus judges it (its schedule plus ALERT_STALE_AFTER), so the alert and `status --check` agree. */
export function healthOf(status: SourceStatus, rules: HealthRules): SourceHealth {
  const budget = status.budget;
  return {
    failing: status.consecutiveFailures >= rules.failingRuns,
    stale: status.stale,
    budgetHigh: budget !== null && budget.limit > 0 && budget.used >= budget.limit * BUDGET_ALERT_SHARE,
  };
}

export function eventsBetween(before: SourceHealth, after: SourceHealth): AlertEvent[] {
  return TRANSITIONS.filter((t) => before[t.flag] !== after[t.flag]).map((t) => (after[t.flag] ? t.on : t.off));
}

/** Reads a stored health back; anything unreadable counts as healthy (an alert too many, never one too few). */
export function parseHealth(text: string | null): SourceHealth {
  if (text === null) return HEALTHY;
  try {
    const value = JSON.parse(text) as Partial<Record<keyof SourceHealth, unknown>>;
    return { failing: value.failing === true, stale: value.stale === true, budgetHigh: value.budgetHigh === true };
  } catch {
    return HEALTHY;
  }
}

const age = (seconds: number | null) =>
  seconds === null
    ? 'unknown'
    : seconds < 5400
      ? `${Math.round(seconds / 60)} min`
      : `${(seconds / 3600).toFixed(1)} h`;

/** One line a person reads in a chat channel. */
export function summarize(event: AlertEvent, status: SourceStatus, rules: HealthRules): string {
  const { source, budget } = status;
  switch (event) {
    case 'failing':
      return `${source} is failing: ${status.consecutiveFailures} runs in a row failed (alert at ${rules.failingRuns})${status.lastError ? `; last error: ${status.lastError.message}` : ''}`;
    case 'recovered':
      return `${source} recovered: its runs succeed again`;
    case 'stale':
      return `${source} is stale: its data is ${age(status.freshnessSeconds)} old, more than its schedule plus the margin allows`;
    case 'fresh':
      return `${source} is fresh again: its data is ${age(status.freshnessSeconds)} old`;
    case 'budget_high':
      return `${source} has used ${budget?.used ?? '?'} of its daily budget of ${budget?.limit ?? '?'} requests (over ${BUDGET_ALERT_SHARE * 100} %)`;
    case 'budget_ok':
      return `${source} is back under ${BUDGET_ALERT_SHARE * 100} % of its daily budget (${budget?.used ?? '?'} of ${budget?.limit ?? '?'} requests)`;
  }
}
