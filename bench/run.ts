/**
 * npm run bench [-- --only writer,backfill,limits,idle,observability,requests,reporting,memory] [--size N] [--quick]
 *
 * Not part of `npm test`. Measures the product against the local PostgreSQL and Redis and the fake APIs,
 * prints every figure next to its target and writes bench/results.json. See bench/README.md.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import { clearProfiles, runBackfill } from './backfill.ts';
import type { SourceName } from './fake-host.ts';
import { runIdle } from './idle.ts';
import { REPO_ROOT, cleanupAll, machineBusyMs, measurePolicy, measured, withAdmin } from './infra.ts';
import { runLimits } from './limits.ts';
import { runMemory } from './memory.ts';
import { runObservability } from './observability.ts';
import { runRequests } from './requests.ts';
import { formatProfile } from './profile.ts';
import { formatTable, type Check } from './report.ts';
import { runReporting } from './reporting.ts';
import { runWriter } from './writer.ts';

const PARTS = ['writer', 'backfill', 'limits', 'idle', 'observability', 'requests', 'reporting', 'memory'] as const;
type Part = (typeof PARTS)[number];

const USAGE =
  'Usage: npm run bench [-- --only writer,backfill,limits,idle,observability,requests,reporting,memory] [--size N] [--quick] [--sources carecloud,cin7] [--mode incremental|full] [--settle SECONDS] [--attempts N] [--worker-node-args "--max-old-space-size=192"]';

function parseOptions() {
  const { values } = parseArgs({
    args: process.argv.slice(2).filter((a) => a !== '--'),
    options: {
      only: { type: 'string' },
      size: { type: 'string' },
      quick: { type: 'boolean', default: false },
      sources: { type: 'string', default: 'carecloud,cin7' },
      mode: { type: 'string', default: 'incremental' },
      settle: { type: 'string', default: '300' },
      attempts: { type: 'string', default: '5' },
      'worker-node-args': { type: 'string', default: '' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const only = (values.only ?? PARTS.join(','))
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  const unknown = only.filter((p) => !(PARTS as readonly string[]).includes(p));
  if (unknown.length > 0) throw new Error(`--only: unknown part(s) ${unknown.join(', ')} (parts: ${PARTS.join(', ')})`);
  const quick = values.quick;
  const size = values.size === undefined ? (quick ? 20_000 : 1_000_000) : Number(values.size.replaceAll('_', ''));
  if (!Number.isInteger(size) || size < 1000)
    throw new Error(`--size must be a whole number of at least 1000 (got ${values.size})`);
  const sources = values.sources.split(',').map((s) => s.trim());
  if (sources.length === 0 || sources.some((s) => s !== 'carecloud' && s !== 'cin7'))
    throw new Error(`--sources must list carecloud and/or cin7 (got ${values.sources})`);
  if (values.mode !== 'incremental' && values.mode !== 'full')
    throw new Error(`--mode must be incremental or full (got ${values.mode})`);
  const settleSeconds = Number(values.settle);
  if (!Number.isFinite(settleSeconds) || settleSeconds < 0)
    throw new Error(`--settle must be a number of seconds (got ${values.settle})`);
  const attempts = Number(values.attempts);
  if (!Number.isInteger(attempts) || attempts < 1)
    throw new Error(`--attempts must be a whole number from 1 (got ${values.attempts})`);
  const workerNodeArgs = values['worker-node-args'].split(/\s+/).filter(Boolean);
  return {
    parts: new Set(only as Part[]),
    size,
    quick,
    sources: sources as SourceName[],
    mode: values.mode as 'incremental' | 'full',
    settleSeconds,
    attempts,
    workerNodeArgs,
  };
}

type Options = ReturnType<typeof parseOptions>;
type Log = (line: string) => void;

/** What each part measures, and the figures it adds to the table. */
const RUNNERS: Record<Part, (options: Options, log: Log) => Promise<{ checks: Check[] }>> = {
  writer: (o, log) =>
    measured('writer', () => runWriter({ rowsPerSource: o.quick ? 1000 : 6000, rounds: o.quick ? 1 : 5 }, log), log),
  async backfill(o, log) {
    clearProfiles();
    const result = await runBackfill(
      {
        sources: o.sources,
        // 50 ms as asked. CareCloud's pages of 1000 take longer to map and write than 50 ms to fetch, so one
        // worker already keeps the machine busy there; the API binds at 500 ms, and at 50 ms with pages of 100
        // (CareCloud's own default, and the product's before it found the page size at run time), measured too.
        plans: [
          { latencyMs: 2, vouchers: o.size, sources: ['carecloud', 'cin7'] },
          { latencyMs: 50, vouchers: Math.min(o.size, o.quick ? 10_000 : 200_000), sources: ['carecloud', 'cin7'] },
          {
            latencyMs: 50,
            vouchers: Math.min(o.size, o.quick ? 10_000 : 100_000),
            sources: ['carecloud'],
            pageSize: 100,
          },
          { latencyMs: 500, vouchers: Math.min(o.size, o.quick ? 10_000 : 200_000), sources: ['carecloud'] },
        ],
        workerCounts: [1, 2],
        mode: o.mode,
        profileSize: o.quick ? 10_000 : 200_000,
        workerNodeArgs: o.workerNodeArgs,
      },
      log,
    );
    for (const note of result.notes) log(`note: ${note}`);
    for (const m of result.measurements)
      if (m.profile)
        log(
          `profile of one worker, ${m.source} ${m.vouchers} vouchers (${m.profile.file}):\n${formatProfile(m.profile)}`,
        );
    return result;
  },
  limits: (o, log) =>
    runLimits(
      o.quick
        ? {
            limits: [
              { max: 30, windowMs: 1000 },
              { max: 100, windowMs: 10_000 },
            ],
            windowMs: 20_000,
            vouchers: 5_000,
            pageSize: 10,
            workers: 3,
          }
        : {
            limits: [
              { max: 30, windowMs: 1000 },
              { max: 600, windowMs: 60_000 },
            ],
            windowMs: 180_000,
            vouchers: 40_000,
            pageSize: 10,
            workers: 3,
          },
      log,
    ),
  idle: (o, log) => runIdle({ sources: o.sources, vouchers: Math.min(o.size, o.quick ? 5_000 : 100_000) }, log),
  // Peak RSS of each kind of process at two backfill sizes, the larger --size (1M by default): flat in N is the point.
  memory: (o, log) =>
    runMemory({ sources: o.sources, sizes: o.quick ? [5_000, 20_000] : [Math.min(50_000, o.size), o.size] }, log),
  // The operator's views on a ledger of 100,000 runs per source (a year of 5-minute runs): /metrics and the page's data.
  // The history and the reporting views at 1M vouchers: the dashboard queries against their one second.
  reporting: (o, log) =>
    measured('reporting', () => runReporting({ vouchers: o.quick ? 50_000 : Math.max(o.size, 1_000_000) }, log), log),
  observability: (o, log) =>
    runObservability({ runsPerSource: o.quick ? 10_000 : 100_000, samples: o.quick ? 5 : 15 }, log),
  // Requests ÷ minimum of each scan at the default page sizes, and the 1M projection at the real limits, checked at
  // the limits ×2 with enough requests (20,000 vouchers) to wait for the per-minute window: the limit, not the
  // worker, then sets the pace on two shared cores (below one window's worth, a busy worker does).
  requests: (o, log) =>
    runRequests(
      {
        sources: o.sources,
        vouchers: Math.min(o.size, o.quick ? 20_000 : 200_000),
        scaled: { vouchers: 20_000, factor: 2 },
      },
      log,
    ),
};

function gitState(): { commit: string; dirty: string[] } {
  const git = (...args: string[]) => execFileSync('git', args, { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
  try {
    return { commit: git('rev-parse', 'HEAD'), dirty: git('status', '--porcelain').split('\n').filter(Boolean) };
  } catch {
    return { commit: 'unknown', dirty: [] };
  }
}

/** Written after every part, so that an interrupted bench keeps what it measured. */
function saveResults(results: Record<string, unknown>): void {
  writeFileSync(
    new URL('./results.json', import.meta.url),
    `${JSON.stringify(results, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2)}\n`,
  );
}

async function main() {
  let options: Options;
  try {
    options = parseOptions();
  } catch (error) {
    console.error(`${error instanceof Error ? error.message : String(error)}\n${USAGE}`);
    process.exit(2);
  }
  measurePolicy.settle.maxWaitMs = options.settleSeconds * 1000;
  measurePolicy.attempts = options.attempts;
  const started = Date.now();
  const log: Log = (line) => console.log(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}`);
  const machine = {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGb: Math.round(totalmem() / 1024 ** 3),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    postgres: await withAdmin(
      async (a) =>
        (await a.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]?.v ?? 'unknown',
    ),
  };
  const results: Record<string, unknown> = {
    startedAt: new Date(started).toISOString(),
    options: { ...options, parts: [...options.parts] },
    machine,
    git: gitState(),
  };
  const checks: Check[] = [];
  let failed = false;
  const stop = () => void cleanupAll().finally(() => process.exit(130));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  for (const part of PARTS.filter((p) => options.parts.has(p))) {
    const partStarted = Date.now();
    const busyBefore = machineBusyMs();
    const load = loadavg()[0]!;
    try {
      const result = await RUNNERS[part](options, log);
      checks.push(...result.checks);
      const wallMs = Date.now() - partStarted;
      // Everything on the machine, the bench's own processes included: other work sharing the two cores
      // shows up as a figure well above what the part itself needs.
      const busyCores = (machineBusyMs() - busyBefore) / wallMs;
      results[part] = {
        ...result,
        wallMs,
        machineBusyCores: busyCores,
        loadAverageBefore: load,
        loadAverageAfter: loadavg()[0],
      };
      log(
        `${part}: done in ${(wallMs / 1000).toFixed(0)} s; the machine was busy ${busyCores.toFixed(2)} of ${machine.cpus} cores on average (load before ${load.toFixed(1)})`,
      );
    } catch (error) {
      failed = true;
      results[part] = { error: error instanceof Error ? error.message : String(error) };
      checks.push({ part, metric: 'the part ran', value: 'failed', target: 'ran', met: false });
      console.error(`${part} failed:`, error);
    } finally {
      await cleanupAll();
      results.checks = checks;
      saveResults(results);
    }
  }
  results.finishedAt = new Date().toISOString();
  saveResults(results);
  console.log(`\n${formatTable(checks)}\n`);
  console.log(
    `${machine.cpus} × ${machine.cpuModel}, ${machine.memoryGb} GB, Node ${machine.node}, PostgreSQL ${machine.postgres}. Results in bench/results.json.`,
  );
  process.exit(failed ? 1 : 0);
}

await main();
