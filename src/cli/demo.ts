/**
 * npm run demo [-- --once] [--seed N]
 *
 * Starts fake CareCloud and Cin7 servers with seeded data that keeps changing a little, and runs the real
 * service (queues, schedulers, workers, Postgres) against them — no credentials needed. The demo uses its
 * own database (`<your database>_demo`, recreated at each start) and its own queue prefix, so it never
 * touches real data. `--once` stops after the first complete sync of both sources.
 */
import { parseArgs } from 'node:util';
import pg from 'pg';
import { loadConfig, loadDotEnv, type Config } from '../config.ts';
import { migrate } from '../db/migrate.ts';
import { createLogger } from '../logger.ts';
import { createFakeCareCloud } from '../fake/carecloud.ts';
import { createFakeCin7 } from '../fake/cin7.ts';
import { formatOutcomes, runOnce } from '../../jobs/run-once.ts';
import { createRedis } from '../../jobs/queues.ts';
import { startService, stopOnSignals } from '../../jobs/service.ts';
import { runCli, UsageError, usageErrorFrom } from './run-cli.ts';

const USAGE = 'Usage: npm run demo [-- --once] [--seed N]';
const PREFIX = 'voucher-sync-demo';

function demoDatabaseUrl(databaseUrl: string): string {
  const url = new URL(databaseUrl);
  url.pathname = `/${url.pathname.replace(/^\//, '') || 'voucher_sync'}_demo`;
  return url.toString();
}

async function recreateDatabase(databaseUrl: string): Promise<void> {
  const url = new URL(databaseUrl);
  const name = decodeURIComponent(url.pathname.slice(1));
  url.pathname = '/postgres';
  const admin = new pg.Client({ connectionString: url.toString() });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS "${name.replace(/"/g, '""')}" WITH (FORCE)`);
  } finally {
    await admin.end();
  }
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
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ source: string; status: string; n: string }>(
      'SELECT source, status, count(*) AS n FROM reporting.vouchers GROUP BY source, status ORDER BY source, status',
    );
    const rejected = await client.query<{ source: string; n: string }>('SELECT source, count(*) AS n FROM rejected_records GROUP BY source ORDER BY source');
    console.log(`\nVouchers in reporting.vouchers: ${rows.map((r) => `${r.source}/${r.status} ${r.n}`).join(', ') || 'none yet'}`);
    console.log(`Rejected records kept aside: ${rejected.rows.map((r) => `${r.source} ${r.n}`).join(', ') || 'none'}`);
  } finally {
    await client.end();
  }
}

runCli(USAGE, async () => {
  let values;
  try {
    ({ values } = parseArgs({ args: process.argv.slice(2), options: { once: { type: 'boolean', default: false }, seed: { type: 'string', default: '42' } }, strict: true }));
  } catch (error) {
    usageErrorFrom(error);
  }
  const seed = Number(values.seed);
  if (!/^\d+$/.test(values.seed) || !Number.isSafeInteger(seed)) throw new UsageError(`--seed must be a whole number (got "${values.seed}")`);

  loadDotEnv();
  const base = loadConfig({ DATABASE_URL: process.env.DATABASE_URL, REDIS_URL: process.env.REDIS_URL, LOG_LEVEL: process.env.LOG_LEVEL });
  const databaseUrl = demoDatabaseUrl(base.databaseUrl.reveal());

  const churn = values.once ? undefined : { everyMs: 5_000, changes: 5 };
  const careCloud = createFakeCareCloud({ seed, count: 3_000, churn, rateLimits: [{ max: 10, windowMs: 1000 }] });
  const cin7 = createFakeCin7({ seed, count: 1_500, churn });
  // A few malformed records, as real APIs send now and then: they are rejected with a reason and kept aside.
  careCloud.store.insertMalformed('comma-number');
  careCloud.store.insertMalformed('zero-date');
  cin7.store.insertMalformed('missing-code');
  const careCloudUrl = await careCloud.start();
  const cin7Url = await cin7.start();

  const config: Config = loadConfig({
    DATABASE_URL: databaseUrl,
    REDIS_URL: base.redisUrl.reveal(),
    // Rejected records and runs are shown by the summaries; the log says only what goes wrong.
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'error',
    QUEUE_PREFIX: PREFIX,
    JOB_BACKOFF: '2s',
    CARECLOUD_BASE_URL: careCloudUrl,
    CARECLOUD_LOGIN: 'demo',
    CARECLOUD_PASSWORD: 'demo-password',
    CARECLOUD_APP_ID: 'demo-app',
    CARECLOUD_TIMEZONE: 'Europe/Prague',
    CARECLOUD_RATE_LIMIT: '8/s',
    CARECLOUD_SCHEDULE: '15s',
    CIN7_BASE_URL: cin7Url,
    CIN7_USERNAME: 'demo',
    CIN7_API_KEY: 'demo-key',
    CIN7_SCHEDULE: '15s',
    CIN7_RECONCILE_SCHEDULE: '2m',
  });
  const logger = createLogger(config.logLevel);
  console.log(`Fake CareCloud: ${careCloudUrl}\nFake Cin7 Omni: ${cin7Url}\nDemo database:  ${new URL(databaseUrl).pathname.slice(1)} (recreated)`);
  await recreateDatabase(databaseUrl);
  await clearQueues(config.redisUrl.reveal());
  await migrate(databaseUrl, { logger });

  const psql = `psql "${databaseUrl.replace(/:[^:@/]*@/, '@')}"`;
  const hint = [
    `\nTry:  ${psql} -c "SELECT source, status, count(*), sum(amount) FROM reporting.vouchers GROUP BY 1, 2"`,
    `      ${psql} -c "SELECT source, reason FROM rejected_records"`,
    `      ${psql} -c "SELECT source, mode, status, fetched, inserted, updated, api_calls FROM sync_runs ORDER BY id DESC LIMIT 5"`,
  ].join('\n');
  if (values.once) {
    const service = await startService(config, logger, { schedulers: false });
    try {
      console.log('Syncing both sources once…');
      const outcomes = await runOnce(service, config.redisUrl.reveal(), PREFIX, 'incremental', 'demo');
      console.log(formatOutcomes(outcomes));
      await printCounts(databaseUrl);
      console.log(hint);
      return outcomes.every((o) => o.ok) ? 0 : 1;
    } finally {
      await service.stop();
      await Promise.all([careCloud.stop(), cin7.stop()]);
    }
  }

  const service = await startService(config, logger);
  console.log('Syncing every 15 s while the fakes keep changing; Cin7 reconciles every 2 min. Ctrl-C stops.');
  const timer = setInterval(() => void printCounts(databaseUrl).catch((error: unknown) => console.error(String(error))), 10_000);
  console.log(hint);
  stopOnSignals(service, logger, () => {
    clearInterval(timer);
    void Promise.all([careCloud.stop(), cin7.stop()]).then(() => process.exit(0));
  });
});
