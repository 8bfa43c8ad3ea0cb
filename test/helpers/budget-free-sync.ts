/**
 * An incremental run of Cin7 outside a test's budget: without a daily budget, under limiter keys of their own, so that
 * a test of the budget plan starts with its budget untouched by the first backfill it needs.
 */
import { createSourceRuntimes } from '../../jobs/runtime.ts';
import { loadConfig } from '../../src/config.ts';
import { runSync } from '../../src/sync/run-sync.ts';
import type { Harness } from './sync-harness.ts';

export async function syncUnlimited(harness: Harness): Promise<void> {
  const config = loadConfig({ ...harness.env, CIN7_DAILY_BUDGET: 'off', QUEUE_PREFIX: `${harness.prefix}-setup` });
  const runtime = createSourceRuntimes(config, { redis: harness.redis, logger: harness.logger }).find(
    (r) => r.name === 'cin7',
  )!;
  const stream = runtime.streams[0]!;
  const { client, settings } = runtime;
  await runSync({
    source: 'cin7',
    stream,
    mode: 'incremental',
    client,
    db: harness.db,
    logger: harness.logger,
    settings,
  });
}
