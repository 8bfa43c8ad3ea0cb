/**
 * voucher-sync sync --source carecloud --customer ID [--customer ID…]: a customer run (src/sync/customer-sync.ts),
 * called from sync.ts.
 *
 * It runs in this process, not through the queue, so that it never waits hours behind a long backfill: it goes beside
 * the source's main run under the source's `customer` lock, with the source's client and the rate limiter the workers
 * share through Redis (jobs/runtime.ts), so the API's limits hold across both. Ctrl-C or SIGTERM stops it after its
 * current page (ledger `cancelled`, exit 130); nothing is marked deleted until every customer's list has been read.
 */
import { setMaxListeners } from 'node:events';
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { describeDatabaseUrl } from '../../db/database-url.ts';
import { installationId } from '../../db/installation.ts';
import { readPause } from '../../db/source-control.ts';
import { acquireSourceLock, SourceBusyError, type SourceLock } from '../../db/source-lock.ts';
import { RateLimitedError } from '../../errors.ts';
import { sectionOf, sources } from '../../sources/index.ts';
import { runCustomerSync, type CustomerSyncResult } from '../../sync/customer-sync.ts';
import { describeWait, waitingReasonOf } from '../../sync/waiting.ts';
import { bindPrefix, releasePrefix } from '../../../jobs/queue-binding.ts';
import { createRedis, waitForRedis } from '../../../jobs/queues.ts';
import { createSourceRuntimes } from '../../../jobs/runtime.ts';
import { EXIT, openContext, UsageError } from '../command-kit.ts';

/** The sources `--customer` accepts: those whose streams can read one customer's records. */
export const customerSources = (): string[] => sources.filter((s) => s.customerRuns === true).map((s) => s.name);

const MAX_ID_LENGTH = 128;

/**
 * commander's argParser for `--customer <id...>`: each id checked, the ids collected. An id is what a URL path
 * segment can hold unescaped (CareCloud's are hex strings). A UsageError rather than commander's InvalidArgumentError,
 * whose message would echo the value: an operator may have pasted something personal (an e-mail address) by mistake.
 */
export function customerIdArgument(value: string, previous: string[] | undefined): string[] {
  const id = value.trim();
  if (id === '') throw new UsageError('--customer: a customer id must not be empty');
  if (id.length > MAX_ID_LENGTH)
    throw new UsageError(`--customer: a customer id is at most ${MAX_ID_LENGTH} characters (got ${id.length})`);
  const bad = /[^A-Za-z0-9._~-]/.exec(id);
  if (bad)
    throw new UsageError(
      `--customer: a customer id holds letters, digits, ".", "_", "~" and "-" only (got one with ${JSON.stringify(bad[0])} in it)`,
    );
  // "." and ".." would be read as path steps: customers/../vouchers is another endpoint.
  if (/^\.+$/.test(id)) throw new UsageError('--customer: a customer id cannot be dots only');
  return [...(previous ?? []), id];
}

/** Checks what commander cannot: the source has customer runs. */
export function checkCustomerSource(source: string): void {
  const accepted = customerSources();
  if (!accepted.includes(source))
    throw new UsageError(
      `--customer re-reads one customer's vouchers, which only ${accepted.join(', ')} can list: not with --source ${source}`,
    );
}

export async function syncCustomers(input: { source: string; customerIds: string[] }): Promise<number> {
  const { source } = input;
  checkCustomerSource(source);
  const context = await openContext({ migrate: true });
  const { config, db } = context;
  const logger = context.logger.child({ role: 'sync' });
  const cleanup: (() => Promise<unknown>)[] = [() => context.close()];
  try {
    const definition = sources.find((s) => s.name === source)!;
    if (sectionOf(config, definition) === null) {
      console.error(`${source} is not configured: set its credentials (see .env.example).`);
      return EXIT.failed;
    }
    const pause = await readPause(db, source);
    if (pause) {
      console.error(`${source} is paused: no run is started until voucher-sync resume --source ${source}`);
      return EXIT.failed;
    }
    await waitForRedis(config.redisUrl.reveal());
    const redis = createRedis(config.redisUrl.reveal());
    cleanup.unshift(async () => redis.disconnect());
    // The limiter lives under the queue prefix, which is bound to one database (jobs/queue-binding.ts).
    const lease = randomUUID();
    const identity = { id: await installationId(db), described: describeDatabaseUrl(config.databaseUrl.reveal()) };
    await bindPrefix(redis, config.jobs.prefix, identity, lease);
    cleanup.unshift(() => releasePrefix(redis, config.jobs.prefix, lease).catch(() => undefined));
    // Built at warn: the runtimes of the other sources would each say they are not scheduled.
    const runtime = createSourceRuntimes(config, { redis, logger: logger.child({}, { level: 'warn' }) }).find(
      (r) => r.name === source,
    )!;
    let lock: SourceLock;
    try {
      lock = await acquireSourceLock(config.databaseUrl.reveal(), source, 'customer');
    } catch (error) {
      if (!(error instanceof SourceBusyError)) throw error;
      console.error(`${error.message}: one customer run per source at a time; try again when it has finished.`);
      return EXIT.failed;
    }
    cleanup.unshift(() => lock.release());
    const cancel = new AbortController();
    const onSignal = () => {
      if (!cancel.signal.aborted) console.error('Stopping the customer run after its current page…');
      cancel.abort();
    };
    process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
    cleanup.unshift(async () => process.off('SIGINT', onSignal).off('SIGTERM', onSignal));
    const signal = AbortSignal.any([cancel.signal, lock.lost]);
    setMaxListeners(32, signal);
    let result: CustomerSyncResult;
    try {
      result = await runCustomerSync({
        source,
        stream: runtime.streams[0]!,
        client: runtime.client,
        customerIds: input.customerIds,
        db,
        logger,
        confirmMax: runtime.settings.confirmMax,
        signal,
        worker: `${hostname()}:${process.pid}:cli`,
      });
    } catch (error) {
      if (cancel.signal.aborted) {
        console.error(`${source} customer run cancelled: what it read so far is stored; nothing was marked deleted.`);
        return EXIT.cancelled;
      }
      if (error instanceof RateLimitedError) {
        const until = new Date(Date.now() + error.retryAfterMs);
        console.error(
          `${source} customer run stopped, ${describeWait(waitingReasonOf(error), until)}: try again then.`,
        );
        return EXIT.failed;
      }
      throw error;
    }
    console.log(formatCustomerRun(result));
    if (result.error !== null) console.error(`error: ${result.error}`);
    return result.status === 'succeeded' ? EXIT.ok : EXIT.failed;
  } finally {
    for (const step of cleanup) await step();
  }
}

/** The run's totals, then a line per customer. */
export function formatCustomerRun(result: CustomerSyncResult): string {
  const c = result.counters;
  const head = `${result.source.padEnd(10)} ${result.status === 'succeeded' ? 'ok    ' : 'FAILED'}  customer run ${result.runId}: fetched ${c.fetched}, inserted ${c.inserted}, updated ${c.updated}, unchanged ${c.unchanged}, rejected ${c.rejected}, deleted ${c.deleted}, ${c.apiCalls} API calls, ${(result.durationMs / 1000).toFixed(1)} s`;
  const lines = result.customers.map((o) =>
    o.known
      ? `  customer ${o.customerId}: ${o.listed} vouchers listed, ${o.deleted} marked deleted`
      : `  customer ${o.customerId}: unknown to ${result.source} (404), nothing marked deleted`,
  );
  return [head, ...lines, ...result.warnings.map((w) => `  warning: ${w}`)].join('\n');
}
