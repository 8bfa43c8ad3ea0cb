/**
 * tsx bench/observability.ts [--runs N] [--samples N]
 *
 * What the operator endpoint costs on a big ledger: a year of 5-minute runs per source (N runs each, default
 * 100,000, with some rejected records), then the time to scrape /metrics and to load the status page's data
 * (/api/status and /api/history together, as the page does) — the median of several requests after a warm-up,
 * against a target of 50 ms each. Also prints, without a target, a year of history (/api/history?days=365).
 * Nothing is synced: the sources are configured (their limits and budget appear) but never asked.
 */
import { parseArgs } from 'node:util';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { loadConfig } from '../src/config.ts';
import { createPrisma } from '../src/db/client.ts';
import { createLogger } from '../src/logger.ts';
import { createOperatorServer } from '../src/server/operator-server.ts';
import { REDIS_URL, cleanupAll, createDatabase, createQueuePrefix, onCleanup } from './infra.ts';
import { formatTable, int, type Check } from './report.ts';

export interface ObservabilityMeasurement {
  runsPerSource: number;
  samples: number;
  /** Medians, in ms. */
  metricsMs: number;
  pageDataMs: number;
  statusMs: number;
  historyMs: number;
  yearHistoryMs: number;
  historyBytes: number;
}

const TARGET_MS = 50;
const TOKEN = 'bench-observability-token-0123456789';

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function timed(fn: () => Promise<unknown>, samples: number): Promise<number> {
  for (let i = 0; i < 3; i++) await fn();
  const times: number[] = [];
  for (let i = 0; i < samples; i++) {
    const start = performance.now();
    await fn();
    times.push(performance.now() - start);
  }
  return median(times);
}

export async function runObservability(
  options: { runsPerSource: number; samples: number },
  log: (line: string) => void,
): Promise<{ measurement: ObservabilityMeasurement; checks: Check[] }> {
  const database = await createDatabase('bench_obs');
  const { prefix } = createQueuePrefix();
  const config = loadConfig({
    DATABASE_URL: database.url,
    REDIS_URL,
    QUEUE_PREFIX: prefix,
    LOG_LEVEL: 'silent',
    HTTP_TOKEN: TOKEN,
    // Configured, never called: the status reads their limits and budget.
    CARECLOUD_BASE_URL: 'http://127.0.0.1:9/api',
    CARECLOUD_LOGIN: 'bench',
    CARECLOUD_PASSWORD: 'bench-password',
    CARECLOUD_APP_ID: 'bench-app',
    CARECLOUD_TIMEZONE: 'Europe/Prague',
    CIN7_BASE_URL: 'http://127.0.0.1:9/api',
    CIN7_USERNAME: 'bench',
    CIN7_API_KEY: 'bench-api-key',
  });
  const db = createPrisma(database.url);
  onCleanup('bench prisma', () => db.$disconnect());
  log(`observability: filling a ledger of ${int(options.runsPerSource)} runs per source…`);
  // Five-minute incremental runs back from now, a failure every 97th, a full scan every 288th (daily), a few
  // resumed over two rows; a rejected record every 50th run.
  await db.$executeRaw`
    INSERT INTO sync_runs (source, stream, mode, status, started_at, finished_at, heartbeat_at, pages, fetched,
                           inserted, updated, unchanged, api_calls, error)
    SELECT s.source, 'vouchers', CASE WHEN i % 288 = 0 THEN 'full' ELSE 'incremental' END,
           CASE WHEN i % 97 = 0 THEN 'failed' ELSE 'succeeded' END,
           now() - make_interval(mins => 5 * i), now() - make_interval(mins => 5 * i) + make_interval(secs => 5 + i % 40),
           now() - make_interval(mins => 5 * i) + make_interval(secs => 5 + i % 40),
           1 + i % 4, i % 200, i % 7, i % 11, i % 200 - i % 7 - i % 11, 1 + i % 4,
           CASE WHEN i % 97 = 0 THEN 'the server answered 503 Service Unavailable' END
      FROM generate_series(1, ${options.runsPerSource}::int) i CROSS JOIN (VALUES ('carecloud'), ('cin7')) s(source)`;
  await db.$executeRaw`UPDATE sync_runs SET logical_run_id = id`;
  await db.$executeRaw`
    INSERT INTO rejected_records (source, stream, source_id, reason, raw, raw_hash, last_rejected_at)
    SELECT s.source, 'vouchers', 'V' || i, 'value: expected a number, got the string "12,50"',
           jsonb_build_object('id', i), decode(md5(s.source || i), 'hex'), now() - make_interval(mins => 250 * i)
      FROM generate_series(1, ${Math.ceil(options.runsPerSource / 50)}::int) i
     CROSS JOIN (VALUES ('carecloud'), ('cin7')) s(source)`;
  await db.$executeRawUnsafe('ANALYZE');

  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  onCleanup('bench redis', async () => void redis.disconnect());
  const queues = ['carecloud', 'cin7', 'carecloud-slices', 'cin7-slices'].map(
    (name) => new Queue(name, { connection: redis, prefix }),
  );
  onCleanup('bench queues', async () => void (await Promise.all(queues.map((q) => q.close()))));
  const server = await createOperatorServer({
    config,
    role: 'all',
    db,
    redis,
    queues,
    logger: createLogger('silent'),
    port: 0,
  });
  onCleanup('operator server', () => server.close());

  const headers = { Authorization: `Bearer ${TOKEN}` };
  const read = async (path: string) => {
    const response = await fetch(`${server.url}${path}`, { headers });
    if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
    return response.text();
  };
  const historyBytes = Buffer.byteLength(await read('/api/history'));
  const { samples } = options;
  const measurement: ObservabilityMeasurement = {
    runsPerSource: options.runsPerSource,
    samples,
    metricsMs: await timed(() => read('/metrics'), samples),
    pageDataMs: await timed(() => Promise.all([read('/api/status'), read('/api/history')]), samples),
    statusMs: await timed(() => read('/api/status'), samples),
    historyMs: await timed(() => read('/api/history'), samples),
    yearHistoryMs: await timed(() => read('/api/history?days=365'), Math.min(samples, 5)),
    historyBytes,
  };
  const ms = (n: number) => `${n.toFixed(1)} ms`;
  log(
    `observability: /metrics ${ms(measurement.metricsMs)}, page data ${ms(measurement.pageDataMs)} ` +
      `(/api/status ${ms(measurement.statusMs)}, /api/history ${ms(measurement.historyMs)}, ` +
      `${int(historyBytes / 1024)} KB), a year of history ${ms(measurement.yearHistoryMs)}`,
  );
  const ledger = `${int(options.runsPerSource * 2)} runs`;
  const checks: Check[] = [
    {
      part: 'observability',
      metric: `scrape /metrics, ledger of ${ledger} (median of ${samples})`,
      value: ms(measurement.metricsMs),
      target: `< ${TARGET_MS} ms`,
      met: measurement.metricsMs < TARGET_MS,
    },
    {
      part: 'observability',
      metric: `status page data (/api/status + /api/history, 7 days), ledger of ${ledger}`,
      value: ms(measurement.pageDataMs),
      target: `< ${TARGET_MS} ms`,
      met: measurement.pageDataMs < TARGET_MS,
    },
    {
      part: 'observability',
      metric: `/api/history?days=365 (bucketed), ledger of ${ledger}`,
      value: ms(measurement.yearHistoryMs),
      target: '',
      met: null,
    },
  ];
  return { measurement, checks };
}

// Run on its own (tsx bench/observability.ts); bench/run.ts imports runObservability instead.
if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: { runs: { type: 'string', default: '100000' }, samples: { type: 'string', default: '15' } },
    strict: true,
  });
  const runsPerSource = Number(values.runs);
  const samples = Number(values.samples);
  if (!Number.isSafeInteger(runsPerSource) || runsPerSource < 1)
    throw new Error(`--runs must be a whole number ≥ 1 (got "${values.runs}")`);
  if (!Number.isSafeInteger(samples) || samples < 1)
    throw new Error(`--samples must be a whole number ≥ 1 (got "${values.samples}")`);
  try {
    const { checks } = await runObservability({ runsPerSource, samples }, console.log);
    console.log(`\n${formatTable(checks)}`);
    process.exitCode = checks.every((c) => c.met !== false) ? 0 : 1;
  } finally {
    await cleanupAll();
  }
}
