/**
 * npm run demo [-- --once] [--seed N]
 *
 * Starts the fake server of every registered source (CareCloud and Cin7 Omni) with seeded data that keeps changing
 * a little, and runs the real service (queues, schedulers, workers, Postgres) against them — no credentials needed.
 * Each source's demo wiring (its fake's data, its demo settings) is in src/sources/<name>/fake.ts. The demo uses its
 * own database (`<your database>_demo`, recreated at each start) and its own queue prefix, so it never touches real
 * data. `--once` stops after the first complete sync of every source.
 */
import type { Command } from 'commander';
import { loadConfig, loadDotEnv, type Config } from '../../config.ts';
import { dropDatabase, storedCounts } from '../../db/demo-database.ts';
import { migrate } from '../../db/migrate.ts';
import { createLogger } from '../../logger.ts';
import { startDemoFakes } from '../../fake/start-fakes.ts';
import { sources } from '../../sources/index.ts';
import { formatOutcomes, runOnce } from '../../../jobs/run-once.ts';
import { createRedis } from '../../../jobs/queues.ts';
import { startService, stopOnSignals } from '../../../jobs/service.ts';
import { act, wholeNumber } from '../command-kit.ts';

const PREFIX = 'voucher-sync-demo';

function demoDatabaseUrl(databaseUrl: string): string {
  const url = new URL(databaseUrl);
  url.pathname = `/${url.pathname.replace(/^\//, '') || 'voucher_sync'}_demo`;
  return url.toString();
}

async function clearQueues(redisUrl: string): Promise<void> {
  const redis = createRedis(redisUrl);
  try {
    const keys = await redis.keys(`${PREFIX}:*`);
    if (keys.length > 0) await redis.del(...keys);
  } finally {
    redis.disconnect();
  }
}

async function printCounts(databaseUrl: string): Promise<void> {
  const { vouchers, rejected } = await storedCounts(databaseUrl);
  console.log(
    `\nVouchers in reporting.vouchers: ${vouchers.map((r) => `${r.source}/${r.status} ${r.n}`).join(', ') || 'none yet'}`,
  );
  console.log(`Rejected records kept aside: ${rejected.map((r) => `${r.source} ${r.n}`).join(', ') || 'none'}`);
}

export function register(program: Command): void {
  program
    .command('demo')
    .description('the whole service against built-in fake servers, in a database of its own (no credentials)')
    .option('--once', 'one sync of every source, a summary, and exit', false)
    .option('--seed <n>', "the fakes' data", wholeNumber(0), 42)
    .action(act(demo));
}

async function demo(values: { once: boolean; seed: number }): Promise<number | void> {
  const seed = values.seed;
  loadDotEnv();
  const base = loadConfig({
    DATABASE_URL: process.env.DATABASE_URL,
    REDIS_URL: process.env.REDIS_URL,
    LOG_LEVEL: process.env.LOG_LEVEL,
  });
  const databaseUrl = demoDatabaseUrl(base.databaseUrl.reveal());

  const churn = values.once ? undefined : { everyMs: 5_000, changes: 5 };
  const fakes = await startDemoFakes({ seed, churn });
  const addresses = fakes.started.map(({ fake, url }) => `${`${fake.label}:`.padEnd(16)}${url}`);
  const stopFakes = () => fakes.stop();

  const config: Config = loadConfig({
    DATABASE_URL: databaseUrl,
    REDIS_URL: base.redisUrl.reveal(),
    // Rejected records and runs are shown by the summaries; the log says only what goes wrong.
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'error',
    QUEUE_PREFIX: PREFIX,
    JOB_BACKOFF: '2s',
    // The status page, on 127.0.0.1 unless HTTP_HOST says otherwise (then HTTP_TOKEN is required, as always).
    // `--once` ends before anyone could look at it.
    HTTP_PORT: values.once ? undefined : (process.env.HTTP_PORT ?? '8080'),
    HTTP_HOST: process.env.HTTP_HOST,
    HTTP_TOKEN: process.env.HTTP_TOKEN,
    ...fakes.env,
  });
  const logger = createLogger(config.logLevel, undefined, { format: config.logFormat });
  console.log(
    `${addresses.join('\n')}\n${'Demo database:'.padEnd(16)}${new URL(databaseUrl).pathname.slice(1)} (recreated)`,
  );
  await dropDatabase(databaseUrl);
  await clearQueues(config.redisUrl.reveal());
  await migrate(databaseUrl, { logger, create: true });

  const psql = `psql "${databaseUrl.replace(/:[^:@/]*@/, '@')}"`;
  const hint = [
    `\nTry:  ${psql} -c "SELECT source, status, count(*), sum(amount) FROM reporting.vouchers GROUP BY 1, 2"`,
    `      ${psql} -c "SELECT source, reason FROM rejected_records"`,
    `      ${psql} -c "SELECT source, mode, status, fetched, inserted, updated, api_calls FROM sync_runs ORDER BY id DESC LIMIT 5"`,
  ].join('\n');
  if (values.once) {
    const service = await startService(config, logger, { schedulers: false });
    try {
      console.log(`Syncing ${sources.map((s) => s.name).join(', ')} once…`);
      const outcomes = await runOnce(service, config.redisUrl.reveal(), PREFIX, 'incremental', 'demo');
      console.log(formatOutcomes(outcomes));
      await printCounts(databaseUrl);
      console.log(hint);
      return outcomes.every((o) => o.ok) ? 0 : 1;
    } finally {
      await service.stop();
      await stopFakes();
    }
  }

  const service = await startService(config, logger);
  if (service.httpUrl)
    console.log(`${'Status page:'.padEnd(16)}${service.httpUrl}/  (queues: ${service.httpUrl}/queues)`);
  const notes = sources.flatMap((s) => (s.fake.demo.note ? [s.fake.demo.note] : []));
  console.log(
    `Syncing every 15 s while the fakes keep changing${notes.map((note) => `; ${note}`).join('')}. Ctrl-C stops.`,
  );
  const timer = setInterval(
    () => void printCounts(databaseUrl).catch((error: unknown) => console.error(String(error))),
    10_000,
  );
  console.log(hint);
  stopOnSignals(service, logger, () => {
    clearInterval(timer);
    void stopFakes().then(() => process.exit(0));
  });
}
