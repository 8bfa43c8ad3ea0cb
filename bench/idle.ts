/**
 * Part 4 — an incremental run when nothing changed at the source, per source, through the real queues and
 * a worker that has already done the backfill (as in production, where the CareCloud token is reused):
 * requests the API received, rows written, wall time. Then, the workers stopped, `npm run sync -- --source <name>`
 * as an operator types it, from command to exit (its own worker, its own login), five times.
 */
import { startFake, type SourceName } from './fake-host.ts';
import { measured } from './infra.ts';
import { int, mb, secs, type Check } from './report.ts';
import { BACKFILL_ENV } from './backfill.ts';
import { startServiceRun } from './service-run.ts';
import { median, runScript, runsCompiled } from './command-run.ts';

/** `npm run sync` of an idle source, from command to exit. */
export const IDLE_COMMAND_TARGET_MS = 1500;
const COMMAND_RUNS = 5;

/** `npm run sync -- --source <name>` against the idle source. */
export interface IdleCommandMeasurement {
  /** Wall times through npm (what the operator types), and of the script's node command line alone. */
  npmMs: number[];
  nodeMs: number[];
  /** API requests of each command (a fresh process: CareCloud logs in again). */
  requests: number[];
  peakRss: number;
  /** Whether bin/ ran the compiled build (else the sources through tsx). */
  compiled: boolean;
}

export interface IdleMeasurement {
  source: SourceName;
  vouchers: number;
  requests: number;
  byEndpoint: Record<string, number>;
  /** inserted + updated, as the run's ledger row says. */
  rowsWritten: number;
  /** Rows whose last_run_id is the idle run: what was really rewritten. */
  rowsTouched: number;
  fetched: number;
  wallMs: number;
  runDurationMs: number;
  ok: boolean;
  command: IdleCommandMeasurement;
}

export interface IdleResult {
  measurements: IdleMeasurement[];
  checks: Check[];
}

export async function runIdle(
  options: { sources: SourceName[]; vouchers: number },
  log: (line: string) => void,
): Promise<IdleResult> {
  const measurements: IdleMeasurement[] = [];
  for (const source of options.sources) {
    const m = await measured(`idle ${source}`, () => measureIdle(source, options.vouchers), log);
    log(
      `idle ${source}: ${m.requests} requests (${Object.entries(m.byEndpoint)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}), ` +
        `${m.rowsWritten} rows written, ${m.fetched} fetched, ${secs(m.wallMs)} through the queue (run ${secs(m.runDurationMs)})`,
    );
    const c = m.command;
    log(
      `idle ${source}: npm run sync -- --source ${source}: ${c.npmMs.map(secs).join(', ')} command to exit ` +
        `(node alone ${c.nodeMs.map(secs).join(', ')}; ${c.requests.join(', ')} requests; peak RSS ${mb(c.peakRss)}; ` +
        `${c.compiled ? 'compiled dist/' : 'sources through tsx: dist/ is not current'})`,
    );
    measurements.push(m);
  }
  const checks: Check[] = [];
  for (const m of measurements) {
    checks.push({
      part: 'idle',
      metric: `${m.source}: API requests (after a ${int(m.vouchers)} backfill)`,
      value: String(m.requests),
      target: '1',
      met: m.requests === 1,
    });
    checks.push({
      part: 'idle',
      metric: `${m.source}: rows written (ledger / last_run_id)`,
      value: `${m.rowsWritten} / ${m.rowsTouched}`,
      target: '0',
      met: m.rowsWritten === 0 && m.rowsTouched === 0,
    });
    checks.push({
      part: 'idle',
      metric: `${m.source}: wall time, enqueue to done (run itself)`,
      value: `${secs(m.wallMs)} (${secs(m.runDurationMs)})`,
      target: '(reference)',
      met: null,
    });
    const c = m.command;
    checks.push({
      part: 'idle',
      metric: `${m.source}: npm run sync, command to exit (median of ${c.npmMs.length}${c.compiled ? '' : ', tsx'})`,
      value: `${secs(median(c.npmMs))} (node alone ${secs(median(c.nodeMs))})`,
      target: `< ${secs(IDLE_COMMAND_TARGET_MS)}`,
      met: median(c.npmMs) < IDLE_COMMAND_TARGET_MS,
    });
  }
  return { measurements, checks };
}

async function measureIdle(source: SourceName, vouchers: number): Promise<IdleMeasurement> {
  const fake = await startFake({ source, count: vouchers, latencyMs: 2, rateLimits: null, seed: 5 });
  try {
    const run = await startServiceRun({ source, fake, workers: 1, env: BACKFILL_ENV[source] });
    try {
      const backfill = await run.runJob('incremental', 15 * 60_000);
      if (!backfill.outcomes[0]?.ok)
        throw new Error(`the backfill before the idle run failed: ${JSON.stringify(backfill.outcomes[0])}`);
      await fake.reset();
      const idle = await run.runJob('incremental', 5 * 60_000);
      const outcome = idle.outcomes[0];
      const stats = await fake.stats();
      const [ledger] = await run.query<{ id: string; inserted: number; updated: number; fetched: number }>(
        'SELECT id::text, inserted, updated, fetched FROM sync_runs ORDER BY id DESC LIMIT 1',
      );
      const [touched] = await run.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM vouchers WHERE last_run_id = $1::bigint',
        [ledger?.id ?? '0'],
      );
      // The command brings its own worker: none of the service's may take its run.
      await run.stopWorkers();
      const command = await measureCommand(source, run.env, fake);
      return {
        source,
        vouchers: fake.listed,
        requests: stats.requests,
        byEndpoint: stats.byEndpoint,
        rowsWritten: (ledger?.inserted ?? 0) + (ledger?.updated ?? 0),
        rowsTouched: touched?.n ?? 0,
        fetched: ledger?.fetched ?? 0,
        wallMs: idle.wallMs,
        runDurationMs: outcome?.ok ? outcome.result.durationMs : NaN,
        ok: outcome?.ok === true,
        command,
      };
    } finally {
      await run.close();
    }
  } finally {
    await fake.stop();
  }
}

/** Runs `npm run sync -- --source <name>` COMMAND_RUNS times each way, alternating; each must succeed. */
async function measureCommand(
  source: SourceName,
  env: Record<string, string>,
  fake: { reset(): Promise<void>; stats(): Promise<{ requests: number }> },
): Promise<IdleCommandMeasurement> {
  const result: IdleCommandMeasurement = { npmMs: [], nodeMs: [], requests: [], peakRss: 0, compiled: runsCompiled() };
  for (let i = 0; i < COMMAND_RUNS; i++) {
    for (const via of ['npm', 'node'] as const) {
      await fake.reset();
      const run = await runScript('sync', ['--source', source], env, { via, timeoutMs: 60_000 });
      if (run.code !== 0) throw new Error(`npm run sync -- --source ${source} exited ${run.code}:\n${run.stderr}`);
      (via === 'npm' ? result.npmMs : result.nodeMs).push(run.wallMs);
      result.requests.push((await fake.stats()).requests);
      result.peakRss = Math.max(result.peakRss, run.peakRss ?? 0);
    }
  }
  return result;
}
