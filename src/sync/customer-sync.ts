/**
 * runCustomerSync: a customer run (`sync --source carecloud --customer ID…`). It re-reads each customer's vouchers
 * through the stream's `scanCustomer` and writes every page like any scan — validated, rejects kept aside, the same
 * set-based newer-wins write, one transaction per page — then marks deleted, once their absence is confirmed by id
 * (the stream's `lookup`, as after a full scan), that customer's stored vouchers the list no longer holds.
 *
 * It goes beside the source's main run (see "main run / side run" in src/types.ts): the caller holds the source's
 * `customer` lock (src/db/source-lock.ts), not its main one; it abandons only customer runs a dead process left
 * `running`, and moves no watermark and no saved progress. Both runs write newer-wins, so neither loses a change.
 *
 * A customer the source does not know (404) keeps its stored vouchers as they are — a 404 is not an empty list — and
 * the run ends `failed`, naming it; the other customers' lists are still read and confirmed.
 */
import { abandonRunning, finishRun, recordPage, startRun, supersededError } from '../db/ledger.ts';
import type { Db } from '../db/client.ts';
import { storedCustomerVouchers } from '../db/customer-vouchers.ts';
import { markVanished } from '../db/vanished.ts';
import { writePage } from '../db/write-page.ts';
import { AbortedError, FatalSourceError, RateLimitedError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import {
  addCounters,
  emptyCounters,
  systemClock,
  type CallContext,
  type Clock,
  type RunCounters,
  type StreamDefinition,
} from '../types.ts';
import { commitPage, mapPage } from './commit-page.ts';
import { stopped } from './page-loop.ts';
import { openPageSizing } from './page-size.ts';
import { describeWait, waitingReasonOf } from './waiting.ts';

export interface CustomerSyncOptions<Client> {
  source: string;
  /** A stream with `scanCustomer` and `lookup`. */
  stream: StreamDefinition<Client>;
  client: Client;
  /** The customers to re-read, in this order; duplicates are read once. */
  customerIds: string[];
  db: Db;
  logger: Logger;
  /** Deletion confirmations (look-ups by id) the run may spend over all its customers: the source's CONFIRM_MAX. */
  confirmMax: number;
  /** @default systemClock */
  clock?: Clock;
  /**
   * Stops the run after its current page. Aborted with an AbortedError as its reason (a lost lock), the run ends
   * `interrupted`; with any other reason (the operator's Ctrl-C), `cancelled`.
   */
  signal?: AbortSignal;
  worker?: string;
}

/** What the run did for one customer. */
export interface CustomerOutcome {
  customerId: string;
  /** False when the source answered 404 for the customer: nothing of theirs was marked deleted. */
  known: boolean;
  /** Records the customer's list held (rejects included). */
  listed: number;
  /** Stored vouchers of the customer marked deleted, their absence confirmed. */
  deleted: number;
}

export interface CustomerSyncResult {
  runId: bigint;
  source: string;
  stream: string;
  /** `failed` when some customer is unknown to the source (see `customers`); the others were synced. */
  status: 'succeeded' | 'failed';
  error: string | null;
  counters: RunCounters;
  customers: CustomerOutcome[];
  warnings: string[];
  durationMs: number;
}

/** What one run keeps while it reads its customers. */
interface CustomerRun<Client> {
  options: CustomerSyncOptions<Client>;
  runId: bigint;
  started: Date;
  counters: RunCounters;
  call: CallContext;
  logger: Logger;
  /** Confirmations left to spend. */
  confirmLeft: number;
  warnings: string[];
}

export async function runCustomerSync<Client>(options: CustomerSyncOptions<Client>): Promise<CustomerSyncResult> {
  const { source, stream, db, clock = systemClock } = options;
  if (!stream.scanCustomer || !stream.lookup)
    throw new Error(`${source} cannot re-read a customer's records: its stream has no customer scan or look-up`);
  const started = clock.now();
  const abandoned = await abandonRunning(db, source, stream.name, started, 'customer');
  const { runId } = await startRun(db, {
    source,
    stream: stream.name,
    mode: 'customer',
    watermarkBefore: null,
    worker: options.worker,
    startedAt: started,
  });
  const logger = options.logger.child({ source, stream: stream.name, runId: String(runId), mode: 'customer' });
  if (abandoned > 0)
    logger.warn({ abandoned }, 'marked customer runs left unfinished by a stopped process as abandoned');
  const counters = emptyCounters();
  const run: CustomerRun<Client> = {
    options,
    runId,
    started,
    counters,
    call: {
      signal: options.signal,
      observer: { onRequest: () => counters.apiCalls++, onRateLimited: () => counters.rateLimited++ },
    },
    logger,
    confirmLeft: options.confirmMax,
    warnings: [],
  };
  const customerIds = [...new Set(options.customerIds)];
  logger.info({ customers: customerIds.length }, 'customer run started');
  try {
    const read: { outcome: CustomerOutcome; seen: Set<string> }[] = [];
    for (const customerId of customerIds) read.push(await readCustomer(run, customerId));
    // Deletions only once every list is read: a run stopped half-way has marked nothing deleted.
    for (const { outcome, seen } of read) if (outcome.known) outcome.deleted = await confirmGone(run, outcome, seen);
    const unknown = read.filter((r) => !r.outcome.known).map((r) => r.outcome.customerId);
    const error =
      unknown.length === 0
        ? null
        : `${source} has no customer ${unknown.join(', ')} (404); their stored vouchers were left as they are`;
    const status = error === null ? 'succeeded' : 'failed';
    const finished = await finishRun(db, runId, status, counters, clock.now(), {
      error: error ?? undefined,
      warnings: run.warnings,
    });
    if (!finished) throw supersededError(runId);
    const durationMs = clock.now().getTime() - started.getTime();
    if (error === null) logger.info({ ...counters, durationMs }, 'customer run succeeded');
    else logger.error({ ...counters, durationMs, unknown }, 'customer run failed: unknown customers');
    return {
      runId,
      source,
      stream: stream.name,
      status,
      error,
      counters,
      customers: read.map((r) => r.outcome),
      warnings: run.warnings,
      durationMs,
    };
  } catch (error) {
    const signal = options.signal;
    const status = signal?.aborted ? (signal.reason instanceof AbortedError ? 'interrupted' : 'cancelled') : 'failed';
    const reason = signal?.aborted ? stopped(signal) : error;
    const text = reason instanceof Error ? reason.message : String(reason);
    // A customer run does not wait for the limits as a queued run does: run by hand, it fails saying for what.
    const message =
      reason instanceof RateLimitedError
        ? `${describeWait(waitingReasonOf(reason), new Date(clock.now().getTime() + reason.retryAfterMs))}: ${text}`
        : text;
    await finishRun(db, runId, status, counters, clock.now(), { error: message, warnings: run.warnings }).catch(
      (cause: unknown) => logger.error({ err: cause }, 'could not record the end of the run'),
    );
    logger[status === 'failed' ? 'error' : 'warn']({ err: error, ...counters }, `customer run ${status}`);
    throw error;
  }
}

/** Reads one customer's list to its end, a transaction per page; what it held is `seen`. */
async function readCustomer<Client>(
  run: CustomerRun<Client>,
  customerId: string,
): Promise<{ outcome: CustomerOutcome; seen: Set<string> }> {
  const { options, counters, runId } = run;
  const { stream, db, source, signal, clock = systemClock } = options;
  const logger = run.logger.child({ customerId });
  const outcome: CustomerOutcome = { customerId, known: true, listed: 0, deleted: 0 };
  const seen = new Set<string>();
  const pageSizing = await openPageSizing(db, { source, stream, logger, clock });
  const pages = stream.scanCustomer!(
    { client: options.client, now: run.started, call: run.call, logger, pageSizing },
    customerId,
  );
  try {
    for await (const page of pages) {
      const now = clock.now();
      const mapped = mapPage(stream, page.records, now);
      // A rejected record is still there at the source: its stored voucher is not a candidate for deletion.
      for (const key of [...mapped.rows.map((r) => r.sourceId), ...mapped.rejects.map((r) => r.sourceId)])
        if (key) seen.add(key);
      outcome.listed += page.records.length;
      await db.$transaction(async (tx) => {
        await commitPage(tx, stream, mapped, counters, { source, runId, logger });
        await recordPage(tx, runId, now, counters);
      });
      if (signal?.aborted) throw stopped(signal);
    }
  } catch (error) {
    if (!(error instanceof FatalSourceError && error.status === 404)) throw error;
    logger.warn({ customerId }, 'the source has no such customer; its stored vouchers are left as they are');
    outcome.known = false;
  }
  return { outcome, seen };
}

/**
 * The customer's stored vouchers its list did not hold are looked up by id: those found are written (newer-wins:
 * one that moved to another customer is stored as such), those gone are marked deleted. Vouchers first stored after
 * the run began came from a main run going beside it and may be newer than the list: they are left alone.
 */
async function confirmGone<Client>(run: CustomerRun<Client>, outcome: CustomerOutcome, seen: Set<string>) {
  const { options, counters, runId } = run;
  const { stream, db, source, clock = systemClock } = options;
  const stored = await storedCustomerVouchers(db, {
    source,
    customerId: outcome.customerId,
    storedBefore: run.started,
  });
  const missing = stored.filter((key) => !seen.has(key));
  if (missing.length === 0) return 0;
  const checked = missing.slice(0, run.confirmLeft);
  run.confirmLeft -= checked.length;
  if (checked.length < missing.length) {
    const warning = `${missing.length - checked.length} vouchers of customer ${outcome.customerId} that its list no longer holds were not looked up (CONFIRM_MAX reached): they wait for the next customer run or full scan`;
    run.warnings.push(warning);
    run.logger.warn({ warning }, 'the customer run leaves deletions unconfirmed');
  }
  if (checked.length === 0) return 0;
  const found = await stream.lookup!(options.client, checked, run.call);
  const { rows, rejects, implausibleAfter } = mapPage(stream, found, clock.now());
  const alive = new Set([...rows.map((r) => r.sourceId), ...rejects.flatMap((r) => (r.sourceId ? [r.sourceId] : []))]);
  const written = await writePage(db, { source, stream: stream.name, runId, rows, rejects, implausibleAfter });
  addCounters(counters, written);
  const deleted = await markVanished(db, { source, sourceIds: checked.filter((key) => !alive.has(key)), runId });
  counters.deleted += deleted;
  if (deleted > 0)
    run.logger.info(
      { customerId: outcome.customerId, deleted },
      'marked vouchers the customer no longer has as deleted',
    );
  return deleted;
}
