/** CareCloud's settings: its variables, secrets and credentials, and its section of the config. */
import * as field from '../../config-fields.ts';
import { Secret, type CommonSourceConfig, type Schedule } from '../../config-fields.ts';
import { budgetProblems, budgetSettings } from '../../sync/budget-config.ts';

export interface CareCloudConfig extends CommonSourceConfig {
  baseUrl: string;
  login: string;
  password: Secret;
  appId: Secret;
  timezone: string;
  /**
   * Records a request asks for: the number CARECLOUD_PAGE_SIZE sets, exactly; with `auto` (findPageSize) the most it
   * asks for (PAGE_SIZE_CEILING), the largest CareCloud accepts being found at run time.
   */
  pageSize: number;
  /** CARECLOUD_PAGE_SIZE=auto (the default): the page size is found at run time (src/sync/page-size.ts). */
  findPageSize: boolean;
  /** Records re-read at each page boundary, to detect rows shifting while we page. */
  pageOverlap: number;
  /** Pages per slice when a full scan or first backfill is split across workers. */
  slicePages: number;
}

const RECONCILE_SCHEDULE: Schedule = { pattern: '0 4 * * 0' };

/**
 * The largest page CARECLOUD_PAGE_SIZE=auto asks for: CareCloud documents no maximum for `count`, and its best-practice
 * page recommends batches of about 1,000 records at most.
 */
export const PAGE_SIZE_CEILING = 1000;

/** The most records a request asks for: the number set, or with `auto` the ceiling. */
const pageSizeOf = (value: number | 'auto') => (value === 'auto' ? PAGE_SIZE_CEILING : value);

export const careCloudConfig = field.defineSourceConfig({
  variables: {
    CARECLOUD_BASE_URL: field.url(['http:', 'https:']).optional(),
    CARECLOUD_LOGIN: field.str.min(1).optional(),
    CARECLOUD_PASSWORD: field.str.min(1).optional(),
    CARECLOUD_APP_ID: field.str.min(1).optional(),
    CARECLOUD_TIMEZONE: field.timezone.optional(),
    CARECLOUD_PAGE_SIZE: field.intOrAuto(1, PAGE_SIZE_CEILING).default('auto'),
    CARECLOUD_PAGE_OVERLAP: field.int(1, 50).default(5),
    CARECLOUD_SLICE_PAGES: field.int(1, 100_000).default(250),
    CARECLOUD_LOOKBACK: field.duration.default(600_000),
    CARECLOUD_SCHEDULE: field.schedule.default({ every: 300_000 }),
    // Default in `section`: CARECLOUD_FULL_SCHEDULE is its earlier name, still read.
    CARECLOUD_RECONCILE_SCHEDULE: field.schedule.optional(),
    CARECLOUD_FULL_SCHEDULE: field.schedule.optional(),
    CARECLOUD_RATE_LIMIT: field.rateWindows.default([
      { max: 5, windowMs: 1000 },
      { max: 120, windowMs: 60_000 },
    ]),
    CARECLOUD_DAILY_BUDGET: field.budget.default(null),
    // Default: enough for CARECLOUD_SCHEDULE (see defaultIncrementalReserve).
    CARECLOUD_INCREMENTAL_RESERVE: field.int(0, 10_000_000).optional(),
    // For tests of the budget plan only.
    CARECLOUD_BUDGET_WINDOW: field.duration.default(86_400_000),
    CARECLOUD_CONFIRM_MAX: field.int(0, 100_000).default(100),
  },
  secrets: ['CARECLOUD_PASSWORD', 'CARECLOUD_APP_ID'],
  credentials: [
    'CARECLOUD_BASE_URL',
    'CARECLOUD_LOGIN',
    'CARECLOUD_PASSWORD',
    'CARECLOUD_APP_ID',
    'CARECLOUD_TIMEZONE',
  ],
  check(values, env) {
    const { CARECLOUD_RECONCILE_SCHEDULE: reconcile, CARECLOUD_FULL_SCHEDULE: full } = values;
    const budget = budgetProblems(
      'CARECLOUD',
      values.CARECLOUD_DAILY_BUDGET,
      values.CARECLOUD_INCREMENTAL_RESERVE,
      values.CARECLOUD_BUDGET_WINDOW,
      env,
    );
    if (reconcile === undefined || full === undefined || JSON.stringify(reconcile) === JSON.stringify(full))
      return budget;
    const got = `got "${env.CARECLOUD_RECONCILE_SCHEDULE}" and "${env.CARECLOUD_FULL_SCHEDULE}"`;
    return [
      `CARECLOUD_RECONCILE_SCHEDULE, CARECLOUD_FULL_SCHEDULE must not differ: the second is the old name of the first (${got})`,
      ...budget,
    ];
  },
  section: (e): CareCloudConfig => ({
    baseUrl: field.baseUrlOf(e.CARECLOUD_BASE_URL!),
    login: e.CARECLOUD_LOGIN!,
    password: new Secret(e.CARECLOUD_PASSWORD!),
    appId: new Secret(e.CARECLOUD_APP_ID!),
    timezone: e.CARECLOUD_TIMEZONE!,
    pageSize: pageSizeOf(e.CARECLOUD_PAGE_SIZE),
    findPageSize: e.CARECLOUD_PAGE_SIZE === 'auto',
    // A size found at run time lowers it further, to that size less one (offset-scan.ts, slices.ts).
    pageOverlap: Math.min(e.CARECLOUD_PAGE_OVERLAP, pageSizeOf(e.CARECLOUD_PAGE_SIZE) - 1),
    slicePages: e.CARECLOUD_SLICE_PAGES,
    lookbackMs: e.CARECLOUD_LOOKBACK,
    schedule: e.CARECLOUD_SCHEDULE,
    // CARECLOUD_FULL_SCHEDULE is the old name of CARECLOUD_RECONCILE_SCHEDULE (check: they may not differ).
    reconcileSchedule: e.CARECLOUD_RECONCILE_SCHEDULE ?? e.CARECLOUD_FULL_SCHEDULE ?? RECONCILE_SCHEDULE,
    limits: {
      windows: e.CARECLOUD_RATE_LIMIT,
      dailyBudget: e.CARECLOUD_DAILY_BUDGET,
      ...budgetSettings(
        e.CARECLOUD_SCHEDULE,
        e.CARECLOUD_DAILY_BUDGET,
        e.CARECLOUD_INCREMENTAL_RESERVE,
        e.CARECLOUD_BUDGET_WINDOW,
      ),
      // With auto, the ceiling: status and the dry runs count in requests of the size found (sync_state).
      recordsPerRequest: pageSizeOf(e.CARECLOUD_PAGE_SIZE),
    },
    confirmMax: e.CARECLOUD_CONFIRM_MAX,
  }),
});
