/**
 * Part 3 — using the rate limit without crossing it. The Cin7 fake enforces ten times Cin7's real limits
 * (30 per second, 600 per minute) and the service is configured with the same numbers; a full scan with
 * small pages gives a backlog of several minutes of requests, and three worker processes compete for it.
 * Over a whole number of the longest window we count the requests the fake served, compare them with what
 * the limits allow, and read the fake's own record of the busiest rolling second and minute, and its 429s.
 */
import type { FakeRateWindow } from '../src/fake/rate-limiter.ts';
import { startFake } from './fake-host.ts';
import { measured, sleep, waitFor } from './infra.ts';
import { int, secs, type Check } from './report.ts';
import { startServiceRun } from './service-run.ts';

export interface LimitsOptions {
  limits: FakeRateWindow[];
  /** The window measured, a whole number of the longest limit window. */
  windowMs: number;
  vouchers: number;
  pageSize: number;
  workers: number;
}

export interface LimitsResult {
  limits: FakeRateWindow[];
  windowMs: number;
  vouchers: number;
  pageSize: number;
  workers: number;
  requestsInWindow: number;
  allowedInWindow: number;
  /** Requests in each consecutive longest window of the measured window. */
  perLongWindow: number[];
  peaks: { windowMs: number; limit: number; peak: number }[];
  status429: number;
  limitViolations: number;
  workersThatRan: number;
  checks: Check[];
}

const describeWindow = (ms: number) => (ms % 60_000 === 0 ? `${ms / 60_000} min` : `${ms / 1000} s`);
const serviceLimit = (limits: FakeRateWindow[]) =>
  limits
    .map((l) => `${l.max}/${l.windowMs % 60_000 === 0 ? `${l.windowMs / 60_000}min` : `${l.windowMs / 1000}s`}`)
    .join(',');

export async function runLimits(options: LimitsOptions, log: (line: string) => void): Promise<LimitsResult> {
  return measured('limits', () => measureLimits(options, log), log);
}

async function measureLimits(options: LimitsOptions, log: (line: string) => void): Promise<LimitsResult> {
  const longest = options.limits.reduce((a, b) => (b.windowMs > a.windowMs ? b : a));
  const fake = await startFake({
    source: 'cin7',
    count: options.vouchers,
    latencyMs: 2,
    rateLimits: options.limits,
    seed: 3,
  });
  try {
    const run = await startServiceRun({
      source: 'cin7',
      fake,
      workers: options.workers,
      env: {
        CIN7_PAGE_SIZE: String(options.pageSize),
        CIN7_RATE_LIMIT: serviceLimit(options.limits),
        CIN7_DAILY_BUDGET: 'off',
      },
    });
    try {
      const backlog = Math.ceil(options.vouchers / options.pageSize);
      log(
        `limits: ${options.workers} workers, a full scan of ${int(options.vouchers)} Cin7 vouchers in pages of ${options.pageSize} ` +
          `(${int(backlog)} requests, ${secs((backlog / longest.max) * longest.windowMs)} at the limit); measuring ${secs(options.windowMs)}`,
      );
      await fake.reset();
      await run.enqueue('full');
      let first = 0;
      await waitFor('the first request', async () => (first = (await fake.arrivals())[0] ?? 0) > 0, 60_000, 20);
      await sleep(Math.max(0, first + options.windowMs - Date.now()) + 1000);
      const arrivals = await fake.arrivals();
      const stats = await fake.stats();
      const runs = await run.query<{ worker: string | null }>('SELECT worker FROM sync_runs');
      await run.stopWorkers();
      const inWindow = arrivals.filter((t) => t >= first && t < first + options.windowMs);
      const perLongWindow = Array.from(
        { length: Math.round(options.windowMs / longest.windowMs) },
        (_, i) =>
          inWindow.filter((t) => t >= first + i * longest.windowMs && t < first + (i + 1) * longest.windowMs).length,
      );
      const allowed = (longest.max * options.windowMs) / longest.windowMs;
      if (inWindow.length >= backlog) log('limits: warning: the backlog ran out inside the measured window');
      const result: Omit<LimitsResult, 'checks'> = {
        limits: options.limits,
        windowMs: options.windowMs,
        vouchers: options.vouchers,
        pageSize: options.pageSize,
        workers: options.workers,
        requestsInWindow: inWindow.length,
        allowedInWindow: allowed,
        perLongWindow,
        peaks: stats.maxInWindow,
        status429: stats.byStatus['429'] ?? 0,
        limitViolations: stats.limitViolations,
        workersThatRan: new Set(runs.map((r) => r.worker)).size,
      };
      log(
        `limits: ${inWindow.length} requests in ${secs(options.windowMs)} (per ${describeWindow(longest.windowMs)}: ${perLongWindow.join(', ')}), ` +
          `allowed ${allowed}; peaks ${stats.maxInWindow.map((p) => `${p.peak}/${p.limit} per ${describeWindow(p.windowMs)}`).join(', ')}; ` +
          `429s ${result.status429}`,
      );
      return { ...result, checks: limitChecks(result) };
    } finally {
      await run.close();
    }
  } finally {
    await fake.stop();
  }
}

function limitChecks(r: Omit<LimitsResult, 'checks'>): Check[] {
  const share = r.requestsInWindow / r.allowedInWindow;
  const longest = r.limits.reduce((a, b) => (b.windowMs > a.windowMs ? b : a));
  const perWindow = (r.requestsInWindow * longest.windowMs) / r.windowMs;
  const checks: Check[] = [
    {
      part: 'limits',
      metric: `requests per ${describeWindow(longest.windowMs)} achieved ÷ allowed (${secs(r.windowMs)}, ${r.workers} workers, ${r.workersThatRan} ran)`,
      value: `${perWindow.toFixed(0)} / ${longest.max} = ${(share * 100).toFixed(1)} %`,
      target: '≥ 95 %',
      met: share >= 0.95,
    },
  ];
  for (const peak of r.peaks) {
    checks.push({
      part: 'limits',
      metric: `most requests in any rolling ${describeWindow(peak.windowMs)}`,
      value: String(peak.peak),
      target: `≤ ${peak.limit}`,
      met: peak.peak <= peak.limit,
    });
  }
  checks.push({
    part: 'limits',
    metric: '429 answers received',
    value: String(r.status429),
    target: '0',
    met: r.status429 === 0,
  });
  return checks;
}
