/**
 * Part 6 — requests per scan (issue 14 §1). At the real APIs' limits a scan's duration is its number of
 * requests, so each source's first backfill, reconciliation and idle incremental run are read through the real
 * queues (one worker, the product's default page and slice sizes, no rate limit) and their requests counted
 * against the minimum: `ceil(N / page size)` list requests, plus what the API needs to show the end (Cin7:
 * one empty page) and the login. CareCloud's page size is found at run time by default (CARECLOUD_PAGE_SIZE=auto):
 * the minimum counts pages of the size the scans used, as the database kept it (sync_state), not of a number
 * configured here. From those counts, a 1M-voucher first backfill and reconciliation are
 * projected at the default real limits (duration; Cin7: share of the 5,000-a-day budget), and the projection is
 * checked against one first backfill at limits k times faster (windows k times shorter), projected from its own
 * count of list requests and compared with the time from the first list request's arrival to the last one's.
 */
import pg from 'pg';
import type { RateWindow } from '../src/config-fields.ts';
import { startFake, type FakeHost, type SourceName } from './fake-host.ts';
import { measured } from './infra.ts';
import { projectedMs } from './request-projection.ts';
import { int, secs, type Check } from './report.ts';
import { startServiceRun } from './service-run.ts';

/** What each source is measured with: the product's defaults, no limit (the limiter still runs). */
const SOURCES: Record<
  SourceName,
  {
    /** Records a request: the product's default; null when it is found at run time (read from sync_state). */
    pageSize: number | null;
    endRequests: number;
    limits: RateWindow[];
    dailyBudget: number | null;
    env: Record<string, string>;
  }
> = {
  carecloud: {
    pageSize: null,
    endRequests: 0,
    limits: [
      { max: 5, windowMs: 1000 },
      { max: 120, windowMs: 60_000 },
    ],
    dailyBudget: null,
    env: { CARECLOUD_RATE_LIMIT: '100000/s', CARECLOUD_DAILY_BUDGET: 'off' },
  },
  cin7: {
    pageSize: 250,
    endRequests: 1,
    limits: [
      { max: 3, windowMs: 1000 },
      { max: 60, windowMs: 60_000 },
    ],
    dailyBudget: 5000,
    env: { CIN7_RATE_LIMIT: '100000/s', CIN7_DAILY_BUDGET: 'off' },
  },
};

const LIMIT_VARIABLE: Record<SourceName, string> = { carecloud: 'CARECLOUD_RATE_LIMIT', cin7: 'CIN7_RATE_LIMIT' };

export interface RequestsOptions {
  sources: SourceName[];
  vouchers: number;
  /** The check of the projection: a first backfill of this many vouchers at the default limits × `factor`. */
  scaled: { vouchers: number; factor: number };
}

export interface ScanCount {
  scan: 'first backfill' | 'reconciliation' | 'idle incremental';
  /** Records a request the scan asked for (its page size). */
  pageSize: number;
  requests: number;
  byEndpoint: Record<string, number>;
  minimum: number;
  wallMs: number;
}

export interface RequestsMeasurement {
  source: SourceName;
  vouchers: number;
  scans: ScanCount[];
  projection: { scan: string; requests: number; ms: number; budgetShare: number | null }[];
  scaledCheck: { vouchers: number; factor: number; requests: number; projectedMs: number; measuredMs: number };
}

export async function runRequests(
  options: RequestsOptions,
  log: (line: string) => void,
): Promise<{ measurements: RequestsMeasurement[]; checks: Check[] }> {
  const measurements: RequestsMeasurement[] = [];
  const checks: Check[] = [];
  for (const source of options.sources) {
    const m = await measured(`requests ${source}`, () => measureSource(source, options), log);
    measurements.push(m);
    for (const scan of m.scans) {
      const ratio = scan.requests / scan.minimum;
      log(
        `requests ${source} ${scan.scan} of ${int(m.vouchers)} in pages of ${int(scan.pageSize)}: ${int(scan.requests)} (${describe(scan.byEndpoint)}), minimum ${int(scan.minimum)}: ${ratio.toFixed(4)}×, ${secs(scan.wallMs)}`,
      );
      checks.push(
        scan.scan === 'idle incremental'
          ? {
              part: 'requests',
              metric: `${source}: idle incremental run, requests`,
              value: String(scan.requests),
              target: '1',
              met: scan.requests === 1,
            }
          : {
              part: 'requests',
              metric: `${source}: ${scan.scan} of ${int(m.vouchers)}, requests ÷ minimum`,
              value: `${int(scan.requests)} / ${int(scan.minimum)} = ${ratio.toFixed(3)}×`,
              target: '≤ 1.02×',
              met: ratio <= 1.02,
            },
      );
    }
    for (const p of m.projection) {
      const share = p.budgetShare === null ? '' : `, ${(p.budgetShare * 100).toFixed(0)} % of the daily budget`;
      checks.push({
        part: 'requests',
        metric: `${source}: 1M ${p.scan} at the default limits (projected)`,
        value: `${minutes(p.ms)} (${int(p.requests)} requests${share})`,
        target: '(reference)',
        met: null,
      });
    }
    const { scaledCheck: s } = m;
    const off = s.measuredMs / s.projectedMs;
    log(
      `requests ${source} first backfill of ${int(s.vouchers)} at the limits ×${s.factor}: ${int(s.requests)} requests, projected ${secs(s.projectedMs)}, measured ${secs(s.measuredMs)}`,
    );
    checks.push({
      part: 'requests',
      metric: `${source}: projection checked, ${int(s.vouchers)} at the limits ×${s.factor}`,
      value: `${secs(s.projectedMs)} projected, ${secs(s.measuredMs)} measured (${off.toFixed(2)}×)`,
      target: 'within ±20 %',
      met: off >= 0.8 && off <= 1.2,
    });
  }
  return { measurements, checks };
}

async function measureSource(source: SourceName, options: RequestsOptions): Promise<RequestsMeasurement> {
  const settings = SOURCES[source];
  const fake = await startFake({ source, count: options.vouchers, latencyMs: 2, rateLimits: null, seed: 5 });
  try {
    const scans: ScanCount[] = [];
    const run = await startServiceRun({ source, fake, workers: 1, env: settings.env });
    try {
      for (const [scan, mode] of [
        ['first backfill', 'incremental'],
        ['reconciliation', 'full'],
        ['idle incremental', 'incremental'],
      ] as const) {
        scans.push(await countScan(fake, source, mode, scan, run.database.url, () => run.runJob(mode, 30 * 60_000)));
      }
    } finally {
      await run.close();
    }
    const lists = (scan: ScanCount) => (scan.requests - logins(scan.byEndpoint)) / scan.minimum;
    const projection = scans
      .filter((s) => s.scan !== 'idle incremental')
      .map((s) => {
        // The measured overhead (list requests ÷ their minimum), applied to the minimum of a million vouchers.
        const million = minimumOf(source, 1_000_000, 0, s.pageSize);
        const requests = Math.ceil(lists(s) * million) + (source === 'carecloud' ? 1 : 0);
        return {
          scan: s.scan,
          requests,
          ms: projectedMs(requests, settings.limits),
          budgetShare: settings.dailyBudget === null ? null : requests / settings.dailyBudget,
        };
      });
    return { source, vouchers: fake.listed, scans, projection, scaledCheck: await scaledCheck(source, options) };
  } finally {
    await fake.stop();
  }
}

/**
 * One first backfill at the default limits made `factor` times faster (windows `factor` times shorter): its list
 * requests' arrivals at the fake, from the first to the last, against the projection of as many requests. The
 * login and the job's start and end are left out of both, as they are of the projection.
 */
async function scaledCheck(source: SourceName, options: RequestsOptions): Promise<RequestsMeasurement['scaledCheck']> {
  const { vouchers, factor } = options.scaled;
  const settings = SOURCES[source];
  const limits = settings.limits.map((w) => ({ max: w.max, windowMs: w.windowMs / factor }));
  const fake = await startFake({ source, count: vouchers, latencyMs: 2, rateLimits: null, seed: 6 });
  try {
    const env = { ...settings.env, [LIMIT_VARIABLE[source]]: limits.map((w) => `${w.max}/${w.windowMs}ms`).join(',') };
    const run = await startServiceRun({ source, fake, workers: 1, env });
    try {
      await fake.reset();
      const job = await run.runJob('incremental', 30 * 60_000);
      if (!job.outcomes[0]?.ok) throw new Error(`the scaled first backfill failed: ${JSON.stringify(job.outcomes[0])}`);
      const arrivals = await fake.arrivals();
      const requests = arrivals.length;
      const measuredMs = requests > 0 ? Math.max(...arrivals) - Math.min(...arrivals) : 0;
      return { vouchers: fake.listed, factor, requests, projectedMs: projectedMs(requests, limits), measuredMs };
    } finally {
      await run.close();
    }
  } finally {
    await fake.stop();
  }
}

async function countScan(
  fake: FakeHost,
  source: SourceName,
  mode: 'incremental' | 'full',
  scan: ScanCount['scan'],
  databaseUrl: string,
  runJob: () => Promise<{ outcomes: { ok: boolean }[]; wallMs: number }>,
): Promise<ScanCount> {
  await fake.reset();
  const job = await runJob();
  if (!job.outcomes[0]?.ok)
    throw new Error(`the ${scan} (${mode}) of ${source} failed: ${JSON.stringify(job.outcomes[0])}`);
  const { requests, byEndpoint } = await fake.stats();
  const pageSize = SOURCES[source].pageSize ?? (await pageSizeFound(databaseUrl, source));
  const minimum = scan === 'idle incremental' ? 1 : minimumOf(source, fake.listed, logins(byEndpoint), pageSize);
  return { scan, pageSize, requests, byEndpoint, minimum, wallMs: job.wallMs };
}

/** The page size the source's scans found at run time and kept (the largest page accepted). */
async function pageSizeFound(databaseUrl: string, source: SourceName): Promise<number> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ size: number | null }>(
      'SELECT max(page_size_accepted) AS size FROM sync_state WHERE source = $1',
      [source],
    );
    if (!rows[0]?.size) throw new Error(`${source} found no page size: sync_state.page_size_accepted is empty`);
    return rows[0].size;
  } finally {
    await client.end();
  }
}

/** `ceil(N / page size)` list requests, what the API needs to show the end, and the logins made. */
function minimumOf(source: SourceName, vouchers: number, loginRequests: number, pageSize: number): number {
  return Math.ceil(vouchers / pageSize) + SOURCES[source].endRequests + loginRequests;
}

const logins = (byEndpoint: Record<string, number>) => byEndpoint['POST /users/actions/login'] ?? 0;
const describe = (byEndpoint: Record<string, number>) =>
  Object.entries(byEndpoint)
    .map(([k, v]) => `${k} ${int(v)}`)
    .join(', ');
const minutes = (ms: number) =>
  ms < 3_600_000 ? `${(ms / 60_000).toFixed(1)} min` : `${(ms / 3_600_000).toFixed(2)} h`;
