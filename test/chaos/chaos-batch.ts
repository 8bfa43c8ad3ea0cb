/**
 * Runs several seeds side by side (each with its own database, fakes, queue prefix and processes) through
 * the same phases, so that the restarts of the one PostgreSQL and the one Redis of the machine land inside
 * every seed's chaos window and never in a seed's final runs.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { knownIssueOf } from './ground-truth.ts';
import { ensureInfraUp, restartPostgres, restartRedis } from './infra.ts';
import { createInfraSchedule, type ChaosProfile } from './schedule.ts';
import { SeedRun, type SeedReport } from './seed-run.ts';
import { bump, type Counts } from './source-chaos.ts';

export interface BatchOptions {
  seeds: number[];
  profile: ChaosProfile;
  scheduler: boolean;
  restarts: { redis: number; postgres: number };
  logRoot: string;
  env?: Record<string, string>;
}

const message = (error: unknown) => (error instanceof Error ? (error.stack ?? error.message) : String(error));

async function playInfra(
  batchSeed: number,
  durationMs: number,
  restarts: BatchOptions['restarts'],
  windowStart: number,
  counts: Counts,
): Promise<void> {
  for (const event of createInfraSchedule(batchSeed, durationMs, restarts)) {
    const wait = windowStart + event.at - Date.now();
    if (wait > 0) await sleep(wait);
    if (event.kind === 'restart-redis') await restartRedis(event.downMs);
    else await restartPostgres();
    bump(counts, event.kind === 'restart-redis' ? 'Redis restart (all data lost)' : 'PostgreSQL restart');
  }
}

export interface BatchResult {
  reports: SeedReport[];
  /** Restarts of PostgreSQL and Redis: every seed of the batch lived through them. */
  infra: Counts;
}

/** Runs the batch and returns one report per seed; never throws for a seed's failure (see `error`). */
export async function runBatch(options: BatchOptions): Promise<BatchResult> {
  const prepared = await Promise.allSettled(
    options.seeds.map((seed) =>
      SeedRun.prepare({
        seed,
        profile: options.profile,
        scheduler: options.scheduler,
        logRoot: options.logRoot,
        env: options.env,
      }),
    ),
  );
  const runs = prepared.flatMap((p) => (p.status === 'fulfilled' ? [p.value] : []));
  const failedReports: SeedReport[] = prepared.flatMap((p, i) =>
    p.status === 'rejected' ? [failedSeed(options.seeds[i]!, `set-up failed: ${message(p.reason)}`)] : [],
  );
  const failures = new Map<SeedRun, string>();
  const guard = async (run: SeedRun, phase: string, fn: () => Promise<void>) => {
    if (failures.has(run)) return;
    try {
      await fn();
    } catch (error) {
      failures.set(run, `${phase} failed: ${message(error)}`);
    }
  };
  const infra: Counts = {};
  try {
    await Promise.all(runs.map((run) => guard(run, 'baseline', () => run.baseline())));
    const windowStart = Date.now() + 250;
    await Promise.all([
      playInfra(options.seeds[0]!, options.profile.durationMs, options.restarts, windowStart, infra).catch(
        (error: unknown) => bump(infra, `restart failed: ${message(error).slice(0, 120)}`),
      ),
      ...runs.map((run) => guard(run, 'chaos', () => run.playChaos(windowStart))),
    ]);
  } finally {
    await ensureInfraUp();
  }
  const reports = await Promise.all(
    runs.map(async (run) => {
      await guard(run, 'final runs', () => run.settle());
      let report: SeedReport;
      const failure = failures.get(run);
      if (failure === undefined) {
        try {
          report = await run.compare();
        } catch (error) {
          report = run.report(
            { rowsChecked: 0, rejectedChecked: 0, runsChecked: 0, mismatches: [] },
            {},
            {},
            `comparison failed: ${message(error)}`,
          );
        }
      } else {
        report = run.report({ rowsChecked: 0, rejectedChecked: 0, runsChecked: 0, mismatches: [] }, {}, {}, failure);
      }
      await run.close(report.error !== undefined || unknownMismatches(report).length > 0);
      return report;
    }),
  );
  return { reports: [...reports, ...failedReports], infra };
}

function failedSeed(seed: number, error: string): SeedReport {
  return {
    seed,
    setup: {
      careCloud: { count: 0, pageSize: 0, overlap: 0 },
      cin7: { count: 0, pageSize: 0 },
      frequentFullScans: false,
    },
    events: 0,
    changes: {},
    malformed: {},
    faults: {},
    faultsServed: 0,
    process: {},
    runs: {},
    slicedScans: {},
    finalFullRuns: 0,
    requests: { carecloud: 0, cin7: 0 },
    rowsChecked: 0,
    rejectedChecked: 0,
    runsChecked: 0,
    mismatches: [],
    error,
    logDir: '',
    durationMs: 0,
    phases: {},
  };
}

/** The figures of a whole suite run, for the console. */
export function formatReports(reports: SeedReport[], title: string, infra: Counts = {}): string {
  const sum = (pick: (r: SeedReport) => Counts) => {
    const total: Counts = {};
    for (const report of reports) for (const [k, v] of Object.entries(pick(report))) bump(total, k, v);
    return total;
  };
  const table = (counts: Counts) =>
    Object.entries(counts)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => `    ${String(v).padStart(6)}  ${k}`)
      .join('\n');
  const all = reports.flatMap((r) => r.mismatches.map((m) => ({ seed: r.seed, ...m })));
  const mismatches = all.filter((m) => knownIssueOf(m) === undefined);
  const known: Counts = {};
  for (const m of all) {
    const label = knownIssueOf(m);
    if (label !== undefined) bump(known, `${label} (seed ${m.seed}, ${m.kind})`);
  }
  const byKind: Counts = {};
  for (const m of mismatches) bump(byKind, `${m.source} ${m.kind}`);
  const lines = [
    `==== ${title}`,
    `  seeds: ${reports
      .map((r) => r.seed)
      .sort((a, b) => a - b)
      .join(', ')} (${reports.length})`,
    `  per seed: CareCloud ${reports.map((r) => `${r.setup.careCloud.count}/${r.setup.careCloud.pageSize}`).join(' ')} (vouchers/page)`,
    `            Cin7 ${reports.map((r) => `${r.setup.cin7.count}/${r.setup.cin7.pageSize}`).join(' ')}`,
    `  scheduled events: ${reports.reduce((a, r) => a + r.events, 0)}; API requests served: CareCloud ${reports.reduce((a, r) => a + r.requests.carecloud, 0)}, Cin7 ${reports.reduce((a, r) => a + r.requests.cin7, 0)}`,
    `  source changes by kind:\n${table(sum((r) => r.changes))}`,
    `  malformed records by kind:\n${table(sum((r) => r.malformed))}`,
    `  API faults injected by kind (requests; ${reports.reduce((a, r) => a + r.faultsServed, 0)} served, the rest cleared unused):\n${table(sum((r) => r.faults))}`,
    `  process faults and explicit runs:\n${table(sum((r) => r.process))}`,
    `  infrastructure faults (each lived through by every seed of its batch):\n${table(infra)}`,
    `  runs in the ledgers by status:\n${table(sum((r) => r.runs))}`,
    `  scans split into slices, by source:\n${table(sum((r) => r.slicedScans))}`,
    `  full runs needed after the chaos: ${reports.map((r) => r.finalFullRuns).join(' ')}`,
    `  checked: ${reports.reduce((a, r) => a + r.rowsChecked, 0)} voucher rows, ${reports.reduce((a, r) => a + r.rejectedChecked, 0)} malformed records, ${reports.reduce((a, r) => a + r.runsChecked, 0)} runs`,
    `  wall time per seed (s): ${reports.map((r) => (r.durationMs / 1000).toFixed(0)).join(' ')}`,
    `  phases (s, longest seed): ${Object.entries(sum((r) => r.phases))
      .map(([k]) => `${k} ${Math.max(...reports.map((r) => r.phases[k] ?? 0))}`)
      .join(', ')}`,
    `  mismatches: ${mismatches.length}${mismatches.length > 0 ? `\n${table(byKind)}` : ''}`,
    ...mismatches
      .slice(0, 15)
      .map((m) => `    seed ${m.seed} ${m.source} ${m.kind} ${m.id}: ${m.detail.slice(0, 400)}`),
    ...(Object.keys(known).length > 0
      ? [`  known issues (reported, not failing; CHAOS_STRICT=1 fails them):\n${table(known)}`]
      : []),
  ];
  for (const r of reports.filter((r) => r.error !== undefined))
    lines.push(`  seed ${r.seed} ERROR: ${r.error!.slice(0, 1500)}`);
  const kept = reports.filter((r) => r.logDir && (r.error !== undefined || unknownMismatches(r).length > 0));
  for (const r of kept) lines.push(`  seed ${r.seed} logs kept in ${r.logDir}`);
  return lines.join('\n');
}

/** A report's mismatches that are not known issues: these fail the suite. */
export const unknownMismatches = (report: SeedReport) => report.mismatches.filter((m) => knownIssueOf(m) === undefined);

/** `1-24`, `7`, `3,9,12` → seeds. */
export function parseSeeds(text: string | undefined, fallback: number[]): number[] {
  if (!text) return fallback;
  return text.split(',').flatMap((part) => {
    const range = /^\s*(\d+)\s*-\s*(\d+)\s*$/.exec(part);
    if (range) return Array.from({ length: Number(range[2]) - Number(range[1]) + 1 }, (_, i) => Number(range[1]) + i);
    return [Number(part)];
  });
}
