/**
 * Part "memory" — the peak resident set of every kind of process the product runs, during a backfill, at two sizes:
 * a worker of `npm start -- --role worker` (as the other parts start theirs), `npm run sync -- --source <name>`
 * (which runs its own worker) and `npm run demo -- --once` (the fakes, the service and its workers in one process,
 * on the demo's own small data). Each is started with its npm script's command line, heap limit included. A peak
 * that stays put from one size to the next is what says memory is bounded by design rather than by the size measured.
 */
import { BACKFILL_ENV } from './backfill.ts';
import { runScript, runsCompiled } from './command-run.ts';
import { startFake, type SourceName } from './fake-host.ts';
import { REDIS_URL, SERVER_URL, createDatabase, createQueuePrefix, measured, uniqueName, withAdmin } from './infra.ts';
import { int, mb, secs, type Check } from './report.ts';
import { serviceEnv, startServiceRun } from './service-run.ts';

/** Every process, at any backfill size. */
export const MAX_PROCESS_RSS = 300 * 1_048_576;

export interface MemoryOptions {
  sources: SourceName[];
  /** Two backfill sizes (vouchers per source), smaller first. */
  sizes: [number, number];
}

export interface MemoryMeasurement {
  kind: 'worker' | 'sync' | 'demo';
  source: SourceName | 'both';
  /** The backfill size asked for (0 for the demo), and the vouchers the fake listed (CareCloud's hides a few). */
  size: number;
  vouchers: number;
  peakRss: number | null;
  wallMs: number;
}

export async function runMemory(
  options: MemoryOptions,
  log: (line: string) => void,
): Promise<{ measurements: MemoryMeasurement[]; checks: Check[] }> {
  const compiled = runsCompiled();
  if (!compiled) log('memory: dist/ is not current, so npm run sync and demo run the sources through tsx');
  const measurements: MemoryMeasurement[] = [];
  const record = (m: MemoryMeasurement) => {
    const what = m.kind === 'demo' ? 'demo --once' : `${m.kind} ${m.source} ${int(m.vouchers)} vouchers`;
    log(`memory: ${what}: peak RSS ${mb(m.peakRss)} (${secs(m.wallMs)})`);
    measurements.push(m);
  };
  for (const source of options.sources)
    for (const vouchers of options.sizes)
      for (const m of await measured(`memory ${source} ${vouchers}`, () => measureBackfills(source, vouchers), log))
        record(m);
  record(await measured('memory demo', () => measureDemo(), log));

  const checks: Check[] = [];
  for (const kind of ['worker', 'sync'] as const)
    for (const source of options.sources) {
      const [small, large] = options.sizes.map((n) =>
        measurements.find((m) => m.kind === kind && m.source === source && m.size === n)!,
      );
      const peak = Math.max(small!.peakRss ?? Infinity, large!.peakRss ?? Infinity);
      checks.push({
        part: 'memory',
        metric: `${source}: ${kind === 'worker' ? 'npm start worker' : 'npm run sync'} peak RSS, ${int(small!.vouchers)} / ${int(large!.vouchers)} backfill`,
        value: `${mb(small!.peakRss)} / ${mb(large!.peakRss)}`,
        target: `≤ ${mb(MAX_PROCESS_RSS)}, flat in N`,
        met: peak <= MAX_PROCESS_RSS,
      });
    }
  const demo = measurements.find((m) => m.kind === 'demo')!;
  checks.push({
    part: 'memory',
    metric: 'npm run demo -- --once peak RSS (its own data)',
    value: mb(demo.peakRss),
    target: `≤ ${mb(MAX_PROCESS_RSS)}`,
    met: (demo.peakRss ?? Infinity) <= MAX_PROCESS_RSS,
  });
  return { measurements, checks };
}

/** One fake of `vouchers`; a backfill by one worker process, then one by `npm run sync`, each in a fresh database. */
async function measureBackfills(source: SourceName, vouchers: number): Promise<MemoryMeasurement[]> {
  const fake = await startFake({ source, count: vouchers, latencyMs: 2, rateLimits: null, seed: 5 });
  try {
    const run = await startServiceRun({ source, fake, workers: 1, env: BACKFILL_ENV[source] });
    let worker: MemoryMeasurement;
    try {
      const job = await run.runJob('incremental', 15 * 60_000);
      if (!job.outcomes[0]?.ok) throw new Error(`the worker's backfill failed: ${JSON.stringify(job.outcomes[0])}`);
      const [peak] = await run.stopWorkers();
      worker = {
        kind: 'worker',
        source,
        size: vouchers,
        vouchers: fake.listed,
        peakRss: peak ?? null,
        wallMs: job.wallMs,
      };
    } finally {
      await run.close();
    }

    const database = await createDatabase(`bench_${source}`);
    const { prefix, clear } = createQueuePrefix();
    try {
      const env = serviceEnv(source, database.url, prefix, fake, BACKFILL_ENV[source]);
      const sync = await runScript('sync', ['--source', source], env, { via: 'node', timeoutMs: 15 * 60_000 });
      if (sync.code !== 0) throw new Error(`npm run sync -- --source ${source} exited ${sync.code}:\n${sync.stderr}`);
      return [
        worker,
        { kind: 'sync', source, size: vouchers, vouchers: fake.listed, peakRss: sync.peakRss, wallMs: sync.wallMs },
      ];
    } finally {
      await clear();
      await database.drop();
    }
  } finally {
    await fake.stop();
  }
}

/** `npm run demo -- --once` on a database of the bench's (the demo makes and leaves `<it>_demo`, dropped here). */
async function measureDemo(): Promise<MemoryMeasurement> {
  const name = uniqueName('bench_demo');
  const env = { DATABASE_URL: `${SERVER_URL}/${name}`, REDIS_URL, LOG_LEVEL: 'error' };
  try {
    const demo = await runScript('demo', ['--once'], env, { via: 'node', timeoutMs: 10 * 60_000 });
    if (demo.code !== 0) throw new Error(`npm run demo -- --once exited ${demo.code}:\n${demo.stderr}`);
    return { kind: 'demo', source: 'both', size: 0, vouchers: 0, peakRss: demo.peakRss, wallMs: demo.wallMs };
  } finally {
    await withAdmin((admin) => admin.query(`DROP DATABASE IF EXISTS "${name}_demo" WITH (FORCE)`));
  }
}
