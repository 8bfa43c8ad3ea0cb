/** Cin7 Omni's settings: its variables, secrets and credentials, and its section of the config. */
import * as field from '../../config-fields.ts';
import { Secret, type CommonSourceConfig } from '../../config-fields.ts';
import { budgetProblems, budgetSettings } from '../../sync/budget-config.ts';

export interface Cin7Config extends CommonSourceConfig {
  baseUrl: string;
  username: string;
  apiKey: Secret;
  /** Zone of dates that carry no offset. */
  timezone: string;
  pageSize: number;
  /** Pages per slice when a full scan or first backfill is split across workers (default 500). */
  slicePages: number;
}

export const cin7Config = field.defineSourceConfig({
  variables: {
    CIN7_BASE_URL: field.url(['http:', 'https:']).default('https://api.cin7.com/api'),
    CIN7_USERNAME: field.str.min(1).optional(),
    CIN7_API_KEY: field.str.min(1).optional(),
    CIN7_TIMEZONE: field.timezone.default('UTC'),
    CIN7_PAGE_SIZE: field.int(1, 250).default(250),
    CIN7_SLICE_PAGES: field.int(1, 100_000).default(500),
    CIN7_LOOKBACK: field.duration.default(600_000),
    CIN7_SCHEDULE: field.schedule.default({ every: 300_000 }),
    CIN7_RECONCILE_SCHEDULE: field.schedule.default({ pattern: '0 3 * * *' }),
    CIN7_RATE_LIMIT: field.rateWindows.default([
      { max: 3, windowMs: 1000 },
      { max: 60, windowMs: 60_000 },
    ]),
    CIN7_DAILY_BUDGET: field.budget.default(5000),
    // Default: enough for CIN7_SCHEDULE (see defaultIncrementalReserve).
    CIN7_INCREMENTAL_RESERVE: field.int(0, 10_000_000).optional(),
    // For tests of the budget plan only: a day of budget in seconds.
    CIN7_BUDGET_WINDOW: field.duration.default(86_400_000),
    CIN7_CONFIRM_MAX: field.int(0, 5000).default(50),
  },
  secrets: ['CIN7_API_KEY'],
  credentials: ['CIN7_USERNAME', 'CIN7_API_KEY'],
  check: (e, env) => budgetProblems('CIN7', e.CIN7_DAILY_BUDGET, e.CIN7_INCREMENTAL_RESERVE, e.CIN7_BUDGET_WINDOW, env),
  section: (e): Cin7Config => ({
    baseUrl: field.baseUrlOf(e.CIN7_BASE_URL),
    username: e.CIN7_USERNAME!,
    apiKey: new Secret(e.CIN7_API_KEY!),
    timezone: e.CIN7_TIMEZONE,
    pageSize: e.CIN7_PAGE_SIZE,
    slicePages: e.CIN7_SLICE_PAGES,
    lookbackMs: e.CIN7_LOOKBACK,
    schedule: e.CIN7_SCHEDULE,
    reconcileSchedule: e.CIN7_RECONCILE_SCHEDULE,
    limits: {
      windows: e.CIN7_RATE_LIMIT,
      dailyBudget: e.CIN7_DAILY_BUDGET,
      ...budgetSettings(e.CIN7_SCHEDULE, e.CIN7_DAILY_BUDGET, e.CIN7_INCREMENTAL_RESERVE, e.CIN7_BUDGET_WINDOW),
      recordsPerRequest: e.CIN7_PAGE_SIZE,
    },
    confirmMax: e.CIN7_CONFIRM_MAX,
  }),
});
