/**
 * One run per source through the real queues, waited for: what `npm run sync` and `npm run demo -- --once`
 * do. The job queues behind any run of that source already under way (global concurrency 1), so what it
 * reports is at least as fresh as the moment it was asked. What it reports is the job's logical run (every
 * ledger row its job wrote: a run put back after a wait or a shutdown goes on in a new row, src/db/ledger.ts),
 * and while it waits, `watch` is told what the job is doing: queued, waiting behind another run or for a rate
 * limit, or running, with pages, records and an ETA.
 */
import { randomUUID } from 'node:crypto';
import { QueueEvents, type Job, type Queue } from 'bullmq';
import type { Db } from '../src/db/client.ts';
import { jobLedgerRows, liveLedgerRow, logicalRunLedgerRows } from '../src/db/ledger.ts';
import type { LedgerRow } from '../src/db/status-reads.ts';
import { scrubSecrets } from '../src/secrets.ts';
import { estimateEta } from '../src/status/eta.ts';
import type { WaitingReason } from '../src/status/types.ts';
import type { SyncMode } from '../src/types.ts';
import { createRedis, type SyncJobData, type SyncJobResult } from './queues.ts';
import type { Service } from './service.ts';
import { waitingOf } from './steer-error.ts';
import { cancelJobRun } from './cancel-run.ts';

export type OnceOutcome =
  | {
      source: string;
      ok: true;
      result: SyncJobResult;
      /** With `watch`: how long the job was seen waiting (behind another run, for a limit), and for what. */
      waited?: { ms: number; for: string[] };
    }
  | {
      source: string;
      ok: false;
      error: string;
      /** Cancelled (see OnceCancel): `result` holds what its run had done, when it had begun. */
      cancelled?: boolean;
      result?: SyncJobResult;
    };

/**
 * Cancelling the runs asked for (Ctrl-C on `sync`): once `signal` aborts, each job's run is cancelled through
 * Postgres (jobs/cancel-run.ts) and stops after its page; a job that had not begun is removed from its queue.
 */
export interface OnceCancel {
  signal: AbortSignal;
  db: Db;
  /** Who cancels, for the ledger. */
  by: string;
}

/** What a requested run is doing, as `watch.onUpdate` is told. */
export interface OnceView {
  source: string;
  state: 'queued' | 'waiting' | 'running';
  /** Why it is held back and until when (null: unknown); `behind` names the run under way it waits for. */
  waiting: {
    reason: WaitingReason;
    until: Date | null;
    behind: { runId: string; mode: string; jobId: string | null } | null;
  } | null;
  /** The run this view counts: the job's own, or the one it waits behind. */
  pages: number;
  records: number;
  requests: number;
  estimatedTotal: number | null;
  recordsPerSecond: number | null;
  etaSeconds: number | null;
}

export interface OnceWatch {
  /** The ledger, read for the job's rows and the run it waits behind. */
  db: Db;
  /** The tightest sustained request rate of each source's limits (sustainedRate), for ETAs. */
  requestsPerSecond?: (source: string) => number | null;
  onUpdate(view: OnceView): void;
  /** @default 1000 */
  everyMs?: number;
}

export async function runOnce(
  service: Service,
  redisUrl: string,
  prefix: string,
  mode: SyncMode,
  requestedBy: SyncJobData['requestedBy'],
  watch?: OnceWatch,
  /** A backfill's range, and a job id of the caller's (a job of that id already queued is waited for, not added). */
  request: { range?: SyncJobData['range']; jobId?: string } = {},
  cancel?: OnceCancel,
): Promise<OnceOutcome[]> {
  return Promise.all(
    [...service.queues].map(async ([source, queue]): Promise<OnceOutcome> => {
      const connection = createRedis(redisUrl);
      const events = new QueueEvents(source, { connection, prefix });
      let timer: NodeJS.Timeout | undefined;
      let stopCancel = () => {};
      try {
        await events.waitUntilReady();
        const data: SyncJobData = { mode, requestedBy, ...(request.range ? { range: request.range } : {}) };
        const job = await queue.add(mode, data, { jobId: request.jobId ?? `${requestedBy}-${mode}-${randomUUID()}` });
        const waited = { ms: 0, for: [] as string[] };
        if (watch) {
          let lastLook = Date.now();
          let polling = false;
          const poll = async () => {
            if (polling) return;
            polling = true;
            try {
              const view = await viewOf(watch, source, queue, job);
              const now = Date.now();
              if (view.state !== 'running') waited.ms += now - lastLook;
              lastLook = now;
              const what = view.waiting && waitedFor(view.waiting);
              if (what && !waited.for.includes(what)) waited.for.push(what);
              watch.onUpdate(view);
            } catch {
              // A missed look is made up by the next one; the run itself is not affected.
            } finally {
              polling = false;
            }
          };
          // The first look after a period, not at once: a run over within it (an idle source) is spared the reads.
          timer = setInterval(() => void poll(), watch.everyMs ?? 1000);
        }
        // Resolves only when the job was removed before it began: then it never finishes.
        const removed = new Promise<'removed'>((resolve) => {
          if (!cancel) return;
          const onAbort = () =>
            void cancelJobRun(cancel.db, queue, { source, jobId: job.id!, by: cancel.by }).then(
              (outcome) => outcome.kind === 'removed' && resolve('removed'),
              () => undefined,
            );
          if (cancel.signal.aborted) return onAbort();
          cancel.signal.addEventListener('abort', onAbort, { once: true });
          stopCancel = () => cancel.signal.removeEventListener('abort', onAbort);
        });
        const finished = await Promise.race([job.waitUntilFinished(events) as Promise<SyncJobResult>, removed]);
        if (finished === 'removed') return { source, ok: false, cancelled: true, error: 'cancelled before it began' };
        const result = finished;
        if (result.stop?.kind === 'cancelled')
          return { source, ok: false, cancelled: true, error: result.stop.reason, result };
        return { source, ok: true, result, ...(waited.for.length > 0 ? { waited } : {}) };
      } catch (error) {
        return { source, ok: false, error: scrubSecrets(error instanceof Error ? error.message : String(error)) };
      } finally {
        stopCancel();
        clearInterval(timer);
        await events.close();
        connection.disconnect();
      }
    }),
  );
}

const REASONS: readonly string[] = ['rate_limit', 'daily_budget', 'source_busy'] satisfies WaitingReason[];
const reasonOf = (value: string | null): WaitingReason =>
  (REASONS.includes(value ?? '') ? value : 'rate_limit') as WaitingReason;

/**
 * What the job is doing, from the ledger and the queue. Its own rows are found by source and start time (an
 * indexed range: the ledger of a year of runs does not slow it), then by job id.
 */
async function viewOf(watch: OnceWatch, source: string, queue: Queue, job: Job): Promise<OnceView> {
  const { db } = watch;
  const fresh = await queue.getJob(job.id!);
  const own = await jobLedgerRows(db, source, job.id!, new Date(job.timestamp - 60_000));
  const latest = own.at(-1);
  if (latest?.status === 'running') return counted(watch, source, 'running', null, own, latest);
  if (latest?.status === 'waiting') {
    const waiting = { reason: reasonOf(latest.waitingReason), until: latest.waitingUntil, behind: null };
    return counted(watch, source, 'waiting', waiting, own, latest);
  }
  // Not reading: behind another run of the source, or held by the job's own wait.
  const other = await liveLedgerRow(db, source);
  if (other) {
    const rows = await logicalRunLedgerRows(db, other.logicalRunId ?? other.id);
    const view = counted(watch, source, 'waiting', null, rows, other);
    const behind = { runId: String(other.logicalRunId ?? other.id), mode: other.mode, jobId: other.jobId };
    const until =
      other.status === 'waiting'
        ? other.waitingUntil
        : view.etaSeconds === null
          ? null
          : new Date(Date.now() + view.etaSeconds * 1000);
    return {
      ...view,
      waiting: { reason: other.status === 'waiting' ? reasonOf(other.waitingReason) : 'source_busy', until, behind },
    };
  }
  const held = fresh ? waitingOf(fresh) : null;
  const ttl = await queue.getRateLimitTtl();
  const idle = { pages: 0, records: 0, requests: 0, estimatedTotal: null, recordsPerSecond: null, etaSeconds: null };
  if (held && (held.until === null || Date.parse(held.until) > Date.now()))
    return {
      source,
      state: 'waiting',
      waiting: { reason: held.reason, until: held.until === null ? null : new Date(held.until), behind: null },
      ...idle,
    };
  if (ttl > 0)
    return {
      source,
      state: 'waiting',
      waiting: { reason: held?.reason ?? 'rate_limit', until: new Date(Date.now() + ttl), behind: null },
      ...idle,
    };
  return { source, state: 'queued', waiting: null, ...idle };
}

/** Pages, records and ETA of a logical run whose rows are `rows`, `current` the latest (its pace is measured). */
function counted(
  watch: OnceWatch,
  source: string,
  state: OnceView['state'],
  waiting: OnceView['waiting'],
  rows: LedgerRow[],
  current: LedgerRow,
): OnceView {
  const sum = (key: 'pages' | 'fetched' | 'apiCalls') => rows.reduce((total, row) => total + row[key], 0);
  const records = sum('fetched');
  const estimatedTotal =
    current.estimatedTotal ?? rows.findLast((r) => r.estimatedTotal !== null)?.estimatedTotal ?? null;
  const earlier = records - current.fetched;
  const { rate, etaSeconds } = estimateEta({
    done: current.fetched,
    total: estimatedTotal === null ? null : Math.max(estimatedTotal - earlier, 0),
    elapsedSeconds: (Date.now() - current.startedAt.getTime()) / 1000,
    requests: current.apiCalls,
    requestsPerSecond: watch.requestsPerSecond?.(source) ?? null,
  });
  return {
    source,
    state,
    waiting,
    pages: sum('pages'),
    records,
    requests: sum('apiCalls'),
    estimatedTotal,
    recordsPerSecond: rate,
    etaSeconds: state === 'running' || current.status === 'running' ? etaSeconds : null,
  };
}

/** "behind run 12 (full)", "for the daily budget" */
export function waitedFor(waiting: NonNullable<OnceView['waiting']>): string {
  if (waiting.behind) return `behind run ${waiting.behind.runId} (${waiting.behind.mode}) of this source`;
  return {
    rate_limit: 'for the rate limit',
    daily_budget: 'for the daily budget',
    source_busy: 'behind another run of this source',
  }[waiting.reason];
}

export function formatOutcomes(outcomes: OnceOutcome[]): string {
  const lines = outcomes.map((o) => {
    if (!o.ok && o.cancelled) {
      const c = o.result?.counters;
      const done =
        c && o.result?.runId
          ? `; run ${o.result.runId} had fetched ${c.fetched}, inserted ${c.inserted}, updated ${c.updated}, deleted ${c.deleted}; the next run resumes it`
          : '';
      return `${o.source.padEnd(10)} CANCELLED  ${o.error}${done}`;
    }
    if (!o.ok) return `${o.source.padEnd(10)} FAILED  ${o.error}`;
    const c = o.result.counters;
    const waited = o.waited ? `; waited ${(o.waited.ms / 1000).toFixed(1)} s ${o.waited.for.join(', then ')}` : '';
    return `${o.source.padEnd(10)} ok      fetched ${c.fetched}, inserted ${c.inserted}, updated ${c.updated}, unchanged ${c.unchanged}, rejected ${c.rejected}, deleted ${c.deleted}, ${c.apiCalls} API calls, ${(o.result.durationMs / 1000).toFixed(1)} s${waited}`;
  });
  return lines.join('\n');
}
