/**
 * A **replay** (`voucher-sync rejected replay`): the open rejected records of one source, read again from the
 * source one by one — by id or code, as the stream names them (`identify`, `refetch`) — and validated again with
 * today's rules (the stream's `map`). What passes is stored through the page writer (newer wins, like any run)
 * and its rejection resolved `replayed`; what fails again stays open with its new reason; what the source no
 * longer has is resolved `gone`; what has neither id nor code cannot be read again and is left as it is.
 *
 * A side run (see "main run / side run" in src/types.ts): one ledger row per stream, mode `replay`, under the
 * source's replay lock, beside whatever main run is going; it moves no watermark and no saved progress. Each record
 * commits in its own transaction with the row's counters, so a replay stopped half-way (Ctrl-C, an error) keeps
 * what it did.
 */
import { AbortedError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { Db, Tx } from '../db/client.ts';
import { abandonRunning, finishRun, recordPage, startRun } from '../db/ledger.ts';
import {
  deleteRejected,
  rejectAgain,
  rejectionOfPayload,
  resolveRejected,
  type RejectedToReplay,
} from '../db/rejected.ts';
import { acquireSourceLock } from '../db/source-lock.ts';
import { writePage } from '../db/write-page.ts';
import {
  addCounters,
  emptyCounters,
  systemClock,
  type Clock,
  type RecordIdentity,
  type RequestObserver,
  type RunCounters,
  type StreamDefinition,
} from '../types.ts';

export interface ReplayOptions {
  source: string;
  streams: StreamDefinition<unknown>[];
  client: unknown;
  db: Db;
  /** For the source's replay lock (a connection of its own). */
  databaseUrl: string;
  /** The open rejected records to replay (src/db/rejected.ts: openToReplay). */
  rejected: RejectedToReplay[];
  logger: Logger;
  /** @default systemClock */
  clock?: Clock;
  /** Aborted: the replay stops after the record it is reading, `cancelled`. */
  signal?: AbortSignal;
}

export interface ReplayOutcome {
  source: string;
  status: 'succeeded' | 'failed' | 'cancelled';
  /** Read again, valid, stored: resolved `replayed`. */
  resolved: number;
  /** Read again and rejected again: open, with the new reason. */
  failedAgain: number;
  /** No longer at the source: resolved `gone`. */
  gone: number;
  /** The rejected records with neither id nor code (or of a stream that cannot read one record): left open. */
  unidentifiable: bigint[];
  /** The ledger rows, one per stream replayed. */
  runIds: bigint[];
  counters: RunCounters;
  error?: string;
}

/** A record to read again, and the open rejections it answers for (several payloads of one record are read once). */
interface Target {
  identity: RecordIdentity;
  ids: bigint[];
}

/** Replays the given rejected records of one source. Throws SourceBusyError when another replay of it is going. */
export async function replayRejected(options: ReplayOptions): Promise<ReplayOutcome> {
  const clock = options.clock ?? systemClock;
  const outcome: ReplayOutcome = {
    source: options.source,
    status: 'succeeded',
    resolved: 0,
    failedAgain: 0,
    gone: 0,
    unidentifiable: [],
    runIds: [],
    counters: emptyCounters(),
  };
  const lock = await acquireSourceLock(options.databaseUrl, options.source, 'replay');
  try {
    for (const [streamName, rejected] of byStream(options.rejected)) {
      const stream = options.streams.find((s) => s.name === streamName);
      const { targets, unidentifiable } = targetsOf(stream, rejected);
      outcome.unidentifiable.push(...unidentifiable);
      if (!stream || targets.length === 0) continue;
      const status = await replayStream(options, stream, targets, outcome, clock, lock.lost);
      if (status !== 'succeeded') {
        outcome.status = status;
        break;
      }
    }
  } finally {
    await lock.release();
  }
  return outcome;
}

function byStream(rejected: RejectedToReplay[]): Map<string, RejectedToReplay[]> {
  const streams = new Map<string, RejectedToReplay[]>();
  for (const r of rejected) streams.set(r.stream, [...(streams.get(r.stream) ?? []), r]);
  return streams;
}

/** The records to read again, one per identity, and the rejections that name none. */
function targetsOf(
  stream: StreamDefinition<unknown> | undefined,
  rejected: RejectedToReplay[],
): { targets: Target[]; unidentifiable: bigint[] } {
  const targets = new Map<string, Target>();
  const unidentifiable: bigint[] = [];
  for (const r of rejected) {
    const identity = stream?.refetch ? (stream.identify?.({ sourceId: r.sourceId, raw: r.raw }) ?? null) : null;
    if (identity === null) {
      unidentifiable.push(r.id);
      continue;
    }
    const key = `${identity.by}:${identity.value}`;
    const target = targets.get(key) ?? { identity, ids: [] };
    target.ids.push(r.id);
    targets.set(key, target);
  }
  return { targets: [...targets.values()], unidentifiable };
}

async function replayStream(
  options: ReplayOptions,
  stream: StreamDefinition<unknown>,
  targets: Target[],
  outcome: ReplayOutcome,
  clock: Clock,
  lockLost: AbortSignal,
): Promise<ReplayOutcome['status']> {
  const { db, source } = options;
  // Rows a replay of this source left running when its process died: this one holds the replay lock now.
  await abandonRunning(db, source, stream.name, clock.now(), 'replay');
  const { runId } = await startRun(db, {
    source,
    stream: stream.name,
    mode: 'replay',
    watermarkBefore: null,
    startedAt: clock.now(),
  });
  outcome.runIds.push(runId);
  const logger = options.logger.child({ source, stream: stream.name, runId: String(runId) });
  const counters = emptyCounters();
  const observer: RequestObserver = {
    onRequest: () => counters.apiCalls++,
    onRateLimited: () => counters.rateLimited++,
  };
  const signal = anyOf(options.signal, lockLost);
  const finish = async (status: ReplayOutcome['status'], error?: string) => {
    await finishRun(db, runId, status, counters, clock.now(), { error });
    addCounters(outcome.counters, counters);
    logger.info({ status, counters, error }, `replay ${status}`);
    return status;
  };
  try {
    for (const target of targets) {
      if (signal?.aborted) return await finish('cancelled', 'cancelled by the operator');
      const raw = await stream.refetch!(options.client, target.identity, { signal, observer });
      // Counted once committed (requests as they go): a transaction rolled back leaves the counters as they were.
      const step = emptyCounters();
      const settled = await db.$transaction(async (tx) => {
        const result = await settle(tx, { source, stream, runId, target, raw, counters: step });
        await recordPage(tx, runId, clock.now(), addCounters({ ...counters }, step));
        return result;
      });
      addCounters(counters, step);
      outcome.resolved += settled.resolved;
      outcome.failedAgain += settled.failedAgain;
      outcome.gone += settled.gone;
    }
    return await finish('succeeded');
  } catch (error) {
    if (options.signal?.aborted && (error instanceof AbortedError || signal?.aborted))
      return await finish('cancelled', 'cancelled by the operator');
    outcome.error = errorText(error);
    return await finish('failed', outcome.error);
  }
}

/** What one record read again does to its rejections, in one transaction; counts into `counters`. */
async function settle(
  tx: Tx,
  step: {
    source: string;
    stream: StreamDefinition<unknown>;
    runId: bigint;
    target: Target;
    raw: unknown;
    counters: RunCounters;
  },
): Promise<{ resolved: number; failedAgain: number; gone: number }> {
  const { source, stream, runId, target, raw, counters } = step;
  const none = { resolved: 0, failedAgain: 0, gone: 0 };
  counters.pages++;
  if (raw === null || raw === undefined) return { ...none, gone: await resolveRejected(tx, target.ids, runId, 'gone') };
  counters.fetched++;
  const mapped = stream.map(raw);
  if (mapped.ok) {
    const written = await writePage(tx, { source, stream: stream.name, runId, rows: [mapped.row], rejects: [] });
    if (written.rejected === 0) {
      addCounters(counters, { inserted: written.inserted, updated: written.updated, unchanged: written.unchanged });
      return { ...none, resolved: await resolveRejected(tx, target.ids, runId, 'replayed') };
    }
  }
  // Rejected again: by `map`, or by the writer (a value PostgreSQL refuses), which stored it as a rejection of
  // its own — folded into the one replayed, so that one record keeps one open rejection.
  let reason = mapped.ok ? undefined : mapped.reject.reason;
  if (reason === undefined) {
    const stored = await rejectionOfPayload(tx, { source, stream: stream.name }, raw);
    reason = stored?.reason ?? 'rejected again by the writer';
    if (stored && !target.ids.includes(stored.id)) await deleteRejected(tx, stored.id);
  }
  for (const id of target.ids) await rejectAgain(tx, id, runId, reason, raw);
  counters.rejected += target.ids.length;
  return { ...none, failedAgain: target.ids.length };
}

function anyOf(...signals: (AbortSignal | undefined)[]): AbortSignal | undefined {
  const given = signals.filter((s): s is AbortSignal => s !== undefined);
  return given.length === 0 ? undefined : given.length === 1 ? given[0] : AbortSignal.any(given);
}

const errorText = (error: unknown) => (error instanceof Error ? error.message : String(error));
