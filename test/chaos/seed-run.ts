/**
 * One seed of the convergence suite, end to end: a database and both fakes (test/helpers/sync-harness.ts),
 * the service as worker and scheduler processes, a baseline sync, the seed's chaos schedule, then calm: the
 * final runs through the queues and the comparison with the ground truth.
 */
import { hostname } from 'node:os';
import { join } from 'node:path';
import { createWriteStream, mkdirSync, readdirSync, readFileSync, rmSync, type WriteStream } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FakeCareCloud } from '../../src/fake/carecloud.ts';
import type { FakeCin7 } from '../../src/fake/cin7.ts';
import { createHarness, REDIS_URL, type Harness } from '../helpers/sync-harness.ts';
import { compareAfterIncremental, compareWithTruth, type KilledRun, type Mismatch } from './ground-truth.ts';
import { Fleet } from './process-controller.ts';
import { createQueueClient, type QueueClient, type SourceName } from './queue-runs.ts';
import {
  createSchedule,
  MAX_INLINE_WAIT_MS,
  READ_TIMEOUT_MS,
  type ChaosEvent,
  type ChaosProfile,
  type SeedSetup,
} from './schedule.ts';
import { bump, SourceChaos, type Counts } from './source-chaos.ts';

export interface SeedReport {
  seed: number;
  setup: Omit<SeedSetup, 'events'>;
  events: number;
  changes: Counts;
  malformed: Counts;
  /** Faults injected, by kind. */
  faults: Counts;
  /** Of the injected faults, how many requests were actually served one (the rest were cleared unused). */
  faultsServed: number;
  process: Counts;
  runs: Counts;
  /** Scans that were split into slices, by source (from the service's logs). */
  slicedScans: Counts;
  /** Full runs the calm phase needed until one scanned from a start after the chaos. */
  finalFullRuns: number;
  requests: Record<SourceName, number>;
  rowsChecked: number;
  rejectedChecked: number;
  runsChecked: number;
  mismatches: Mismatch[];
  /** An exception that stopped the seed (not a mismatch): the seed failed. */
  error?: string;
  logDir: string;
  durationMs: number;
  /** Seconds spent in each phase (set-up, baseline, chaos, final runs, comparison). */
  phases: Counts;
}

export interface SeedOptions {
  seed: number;
  profile: ChaosProfile;
  scheduler: boolean;
  logRoot: string;
  /** Extra environment for the service. */
  env?: Record<string, string>;
}

const FINAL_RUN_TIMEOUT_MS = 240_000;
/** How long a deep-scan event waits, after its changes, for its bursts to hit the scan that follows. */
const DEEP_SCAN_WAIT_MS = 15_000;
/** No chaos event may take longer (a hung call would otherwise hang the whole batch). */
const EVENT_TIMEOUT_MS = 60_000;

/** Rejects after `ms` unless the promise settles first. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** The pid in the ledger's `worker` column (`host:pid`), when the run was made on this machine. */
function pidOf(worker: string | null): number | undefined {
  const match = worker === null ? null : /^(.*):(\d+)$/.exec(worker);
  return match && match[1] === hostname() ? Number(match[2]) : undefined;
}

export class SeedRun {
  readonly started = Date.now();
  private phaseStart = Date.now();
  readonly phases: Counts = {};
  readonly process: Counts = {};
  readonly faults: Counts = {};
  readonly killedRuns: KilledRun[] = [];
  private faultsInjected = 0;
  private chaosEndedAt = 0;
  private finalFullRuns = 0;
  private readonly extraMismatches: Mismatch[] = [];
  readonly chaos: SourceChaos;

  private constructor(
    readonly options: SeedOptions,
    readonly setup: SeedSetup,
    readonly harness: Harness,
    readonly fleet: Fleet,
    readonly queues: QueueClient,
    readonly logDir: string,
  ) {
    this.chaos = new SourceChaos(harness.careCloud, harness.cin7, (line) => this.log(line));
    this.trace = createWriteStream(join(logDir, 'chaos.log'), { flags: 'a' });
    this.trace.on('error', () => undefined);
    // The harness's own connection has no listener; a Redis restart would print an unhandled error.
    harness.redis.on('error', () => undefined);
  }

  private readonly trace: WriteStream;

  /** One line in the seed's chaos.log: what was played when, to read beside the service's logs. */
  log(line: string): void {
    if (!this.trace.writableEnded) this.trace.write(`${new Date().toISOString()} ${line}\n`);
  }

  static async prepare(options: SeedOptions): Promise<SeedRun> {
    const setup = createSchedule(options.seed, options.profile);
    const harness = await createHarness({
      careCloud: { seed: options.seed, count: setup.careCloud.count, rateLimits: [{ max: 12, windowMs: 1000 }] },
      cin7: { seed: options.seed, count: setup.cin7.count, rateLimits: [{ max: 12, windowMs: 1000 }] },
      env: {
        LOG_LEVEL: 'info',
        HTTP_CONNECT_TIMEOUT: `${READ_TIMEOUT_MS}ms`,
        HTTP_READ_TIMEOUT: `${READ_TIMEOUT_MS}ms`,
        HTTP_RETRIES: '2',
        HTTP_RETRY_BACKOFF: '50ms',
        HTTP_MAX_INLINE_WAIT: `${MAX_INLINE_WAIT_MS}ms`,
        JOB_ATTEMPTS: '10',
        JOB_BACKOFF: '300ms',
        CARECLOUD_PAGE_SIZE: String(setup.careCloud.pageSize),
        CARECLOUD_PAGE_OVERLAP: String(setup.careCloud.overlap),
        CARECLOUD_RATE_LIMIT: '10/s',
        CARECLOUD_SCHEDULE: '4s',
        CARECLOUD_FULL_SCHEDULE: setup.frequentFullScans ? '9s' : 'off',
        CIN7_PAGE_SIZE: String(setup.cin7.pageSize),
        CIN7_RATE_LIMIT: '10/s',
        CIN7_DAILY_BUDGET: 'off',
        CIN7_SCHEDULE: '4s',
        CIN7_RECONCILE_SCHEDULE: setup.frequentFullScans ? '11s' : 'off',
        // Short lookbacks: with the default 10 minutes every incremental run would re-read the whole test's
        // changes and hide a scan that skipped rows. The fakes stamp changes with the current second.
        CARECLOUD_LOOKBACK: '1s',
        CIN7_LOOKBACK: '1s',
        // Small slices, so that full scans and first backfills of both sources are split into several parts
        // read by any worker; every fifth seed reads them unsplit.
        CARECLOUD_SLICE_PAGES: options.seed % 5 === 0 ? '100000' : String(3 + (options.seed % 4)),
        CIN7_SLICE_PAGES: options.seed % 5 === 0 ? '100000' : String(2 + (options.seed % 4)),
        ...options.env,
      },
    });
    const logDir = join(options.logRoot, `seed-${options.seed}`);
    mkdirSync(logDir, { recursive: true });
    const fleet = new Fleet({
      env: harness.env,
      workers: options.profile.workers,
      scheduler: options.scheduler,
      logDir,
    });
    const queues = createQueueClient(REDIS_URL, harness.prefix);
    const run = new SeedRun(options, setup, harness, fleet, queues, logDir);
    try {
      await fleet.start();
      run.mark('set-up');
    } catch (error) {
      await run.close(true);
      throw error;
    }
    return run;
  }

  /** Closes the current phase under `name`. */
  mark(name: string): void {
    const now = Date.now();
    this.phases[name] = Math.round((now - this.phaseStart) / 100) / 10;
    this.phaseStart = now;
  }

  get careCloud(): FakeCareCloud {
    return this.harness.careCloud;
  }

  get cin7(): FakeCin7 {
    return this.harness.cin7;
  }

  /** A first complete sync of both sources, so that the chaos starts from a populated table. */
  async baseline(): Promise<void> {
    await Promise.all(
      (['carecloud', 'cin7'] as const).map((source) => this.queues.run(source, 'full', FINAL_RUN_TIMEOUT_MS)),
    );
    this.mark('baseline');
  }

  /** Plays the seed's schedule from `windowStart` (epoch ms) to the end of the window. */
  async playChaos(windowStart: number): Promise<void> {
    const db = this.harness.db;
    const stored = { carecloud: new Set<string>(), cin7: new Set<string>() };
    for (const row of await db.voucher.findMany({ select: { source: true, sourceId: true } }))
      stored[row.source as SourceName].add(row.sourceId);
    this.chaos.start(stored);
    const background: Promise<void>[] = [];
    for (const event of this.setup.events) {
      const wait = windowStart + event.at - Date.now();
      if (wait > 0) await sleep(wait);
      this.log(`play ${JSON.stringify(event)}`);
      const played = withTimeout(this.play(event), EVENT_TIMEOUT_MS, `${event.kind} at ${event.at} ms`).then(
        () => this.log(`done ${event.kind} at ${event.at} ms`),
        (error: unknown) => {
          this.log(`FAILED ${event.kind} at ${event.at} ms: ${error instanceof Error ? error.message : String(error)}`);
          bump(
            this.process,
            `event failed: ${event.kind}: ${error instanceof Error ? error.message.slice(0, 80) : String(error)}`,
          );
        },
      );
      background.push(played);
    }
    const rest = windowStart + this.options.profile.durationMs - Date.now();
    if (rest > 0) await sleep(rest);
    await Promise.all(background);
    this.mark('chaos');
  }

  private async play(event: ChaosEvent): Promise<void> {
    switch (event.kind) {
      case 'change':
      case 'during-paging':
      case 'malformed':
        this.chaos.apply(event);
        return;
      case 'fault': {
        const fake = event.source === 'carecloud' ? this.careCloud : this.cin7;
        fake.faults.inject(event.fault, { times: event.times, on: event.on });
        bump(this.faults, `${event.source} ${event.label}`, event.times);
        this.faultsInjected += event.times;
        return;
      }
      case 'expire-tokens':
        this.careCloud.store.expireTokens();
        bump(this.faults, 'carecloud token expired mid-run');
        return;
      case 'enqueue':
        await this.queues.enqueue(event.source, event.mode);
        bump(this.process, `explicit ${event.mode} run requested`);
        return;
      case 'kill-worker': {
        const slot = this.fleet.workers[event.worker]!;
        if (!slot.alive) return;
        let signal = event.signal;
        if (signal === 'SIGKILL' && this.options.profile.killOnlyWhenIdle) {
          const busy = (await this.queues.active('carecloud')) + (await this.queues.active('cin7'));
          if (busy > 0) signal = 'SIGTERM';
        }
        bump(this.process, `worker ${signal} at a random moment`);
        await slot.restart(signal, event.downMs);
        return;
      }
      case 'restart-scheduler':
        if (!this.fleet.scheduler) return;
        bump(this.process, `scheduler restart (${event.signal})`);
        await this.fleet.scheduler.restart(event.signal, event.downMs);
        return;
      case 'kill-during-run':
        await this.killDuringRun(event);
        return;
      case 'stream': {
        // Paced by the clock, not by sleeps between changes: a busy event loop makes the stream denser
        // for a while, never longer than its span.
        const start = Date.now();
        for (const [i, change] of event.changes.entries()) {
          const due = start + (i * event.spanMs) / event.changes.length - Date.now();
          if (due > 0) await sleep(due);
          if (this.chaos.stopped || Date.now() - start > event.spanMs) return;
          this.chaos.changeNow(change, ' (steady stream)');
        }
        return;
      }
      case 'deep-scan': {
        const fake = event.source === 'carecloud' ? this.careCloud : this.cin7;
        fake.faults.inject({ kind: 'status', status: 429, retryAfter: Math.ceil(event.holdMs / 1000) }, { on: 'list' });
        bump(this.faults, `${event.source} 429 Retry-After >inline (queue pause)`);
        this.faultsInjected++;
        const bursts = Promise.all(event.burstAt.map((n) => this.chaos.armBurst(event.source, n, event.burst)));
        const start = Date.now();
        for (const [i, change] of event.changes.entries()) {
          const due = start + (i * event.holdMs) / event.changes.length - Date.now();
          if (due > 0) await sleep(due);
          if (this.chaos.stopped) return;
          this.chaos.changeNow(change, ' for a deep scan');
        }
        // Whoever runs next (a schedule or this request), an incremental run now has pages to read. The
        // chaos lasts until it has been read under the bursts (or DEEP_SCAN_WAIT_MS more).
        await this.queues.enqueue(event.source, 'incremental');
        await Promise.race([bursts, sleep(DEEP_SCAN_WAIT_MS)]);
        bump(this.process, `deep incremental scan of ${event.source} under hard-delete bursts`);
        return;
      }
    }
  }

  /** Waits for a run of the source to be under way, then SIGKILLs the worker process running it. */
  private async killDuringRun(event: Extract<ChaosEvent, { kind: 'kill-during-run' }>): Promise<void> {
    const deadline = Date.now() + 15_000;
    const running = async () => {
      try {
        return await this.harness.db.syncRun.findFirst({
          where: { source: event.source, status: 'running' },
          orderBy: { id: 'desc' },
        });
      } catch {
        return null; // PostgreSQL restarting: look again
      }
    };
    while (Date.now() < deadline) {
      const run = await running();
      const slot = run ? this.fleet.workerByPid(pidOf(run.worker) ?? -1) : undefined;
      if (run && slot) {
        if (event.delayMs > 0) await sleep(event.delayMs);
        const killedAt = new Date();
        await slot.stop('SIGKILL');
        // Still 'running' once its process is dead: the kill landed inside the run.
        const after = await this.harness.db.syncRun.findUnique({ where: { id: run.id } }).catch(() => null);
        if (after?.status === 'running') {
          this.killedRuns.push({ runId: run.id, source: event.source, killedAt });
          bump(this.process, `worker SIGKILL inside a run of ${event.source}`);
        } else {
          bump(this.process, `worker SIGKILL just after a run of ${event.source} ended`);
        }
        if (event.downMs > 0) await sleep(event.downMs);
        await slot.start().catch(() => undefined); // the fleet's supervisor retries
        return;
      }
      await sleep(100);
    }
    bump(this.process, `kill-during-run found no ${event.source} run under way`);
  }

  /** Stops the chaos, brings every process back, and makes the final runs through the queues. */
  async settle(): Promise<void> {
    this.chaos.stop();
    let pending = 0;
    for (const fake of [this.careCloud, this.cin7]) {
      pending += fake.faults.pending;
      fake.faults.clear();
    }
    this.faultsServedCount = this.faultsInjected - pending;
    this.chaosEndedAt = Date.now();
    this.log('chaos over: every process running again');
    await withTimeout(this.fleet.ensureRunning(), 120_000, 'starting every process again');
    // No more scheduled runs: the final ones are asked for explicitly.
    await this.fleet.scheduler?.stop('SIGTERM');
    await withTimeout(this.queues.removeSchedulers(), 30_000, 'removing the Job Schedulers');
    this.log('final runs');
    await Promise.all((['carecloud', 'cin7'] as const).map((source) => this.finalRuns(source)));
    await this.fleet.stop('SIGTERM');
    this.log('final runs done, processes stopped');
    this.mark('final runs');
  }

  private faultsServedCount = 0;

  private async finalRuns(source: SourceName): Promise<void> {
    const failed = (mode: string, error: unknown): void => {
      this.extraMismatches.push({
        kind: 'final-run-failed',
        source,
        id: mode,
        detail: error instanceof Error ? error.message : String(error),
      });
    };
    const state = () =>
      this.harness.db.syncState.findUnique({ where: { source_stream: { source, stream: 'vouchers' } } });
    // A run resumes the scan an earlier run left unfinished (the README's resume guarantee), and such a
    // scan cannot see what changed behind it. So: incremental runs until one started its own scan after
    // the chaos; check; then full runs until one started after the chaos; the comparison follows.
    const run = async (mode: 'incremental' | 'full') => {
      const result = await withTimeout(
        this.queues.run(source, mode, FINAL_RUN_TIMEOUT_MS),
        FINAL_RUN_TIMEOUT_MS + 10_000,
        `final ${mode} run of ${source}`,
      );
      this.log(`final ${mode} run of ${source}: run ${result.runId}, ${JSON.stringify(result.counters)}`);
      return result;
    };
    for (let i = 0; ; i++) {
      if (i === 4)
        return failed('incremental', new Error('four incremental runs after the chaos and each resumed an older scan'));
      const resumes = ((await state())?.progress as Record<string, unknown> | null)?.incremental !== undefined;
      try {
        await run('incremental');
      } catch (error) {
        return failed('incremental', error);
      }
      if (!resumes) break;
    }
    this.extraMismatches.push(
      ...(await compareAfterIncremental({ db: this.harness.db, source, careCloud: this.careCloud, cin7: this.cin7 })),
    );
    // A full run confirms at most *_CONFIRM_MAX vanished vouchers; the rest wait for the next full scan
    // (documented): one that used the whole allowance is followed by another.
    const confirmMax = this.harness.config.sources[source]!.confirmMax;
    for (let i = 0; ; i++) {
      if (i === 8)
        return failed(
          'full',
          new Error('eight full runs after the chaos and still no complete scan that found every vanished voucher'),
        );
      let deleted: number;
      try {
        deleted = (await run('full')).counters.deleted;
        this.finalFullRuns++;
      } catch (error) {
        return failed('full', error);
      }
      const lastFull = (await state())?.lastFullScanAt;
      if (lastFull && lastFull.getTime() >= this.chaosEndedAt && deleted < confirmMax) return;
    }
  }

  async compare(): Promise<SeedReport> {
    const comparison = await compareWithTruth({
      db: this.harness.db,
      careCloud: this.careCloud,
      cin7: this.cin7,
      history: this.chaos.history,
      killedRuns: this.killedRuns,
    });
    this.mark('comparison');
    const runs: Counts = {};
    for (const group of await this.harness.db.syncRun.groupBy({ by: ['source', 'status'], _count: true }))
      bump(runs, `${group.source} ${group.status}`, group._count);
    // A process that cannot start while PostgreSQL or Redis is restarting exits 1, and its supervisor
    // starts it again: counted, not a mismatch. One that dies once running is.
    for (const crash of this.fleet.crashes.filter((c) => c.atStartUp))
      bump(this.process, `${crash.name.replace(/-\d+$/, '')} failed to start (exit ${crash.code}), restarted`);
    const crashes: Mismatch[] = this.fleet.crashes
      .filter((c) => !c.atStartUp)
      .map((crash) => ({
        kind: 'process-crash',
        source: 'service',
        id: crash.name,
        detail: `exited on its own (code ${crash.code}, signal ${crash.signal}): ${crash.tail.slice(-3).join(' | ').slice(0, 600)}`,
      }));
    return this.report(
      { ...comparison, mismatches: [...this.extraMismatches, ...crashes, ...comparison.mismatches] },
      runs,
      this.slicedScans(),
    );
  }

  /** Scans split into slices, by source, as the workers and the final runs logged them. */
  private slicedScans(): Counts {
    const counts: Counts = {};
    const files = readdirSync(this.logDir).filter((name) => name.endsWith('.log'));
    const lines = [
      ...this.harness.logLines,
      ...files.flatMap((name) => readFileSync(join(this.logDir, name), 'utf8').split('\n')),
    ];
    for (const line of lines)
      if (line.includes('reading the scan in slices')) bump(counts, /"source":"(\w+)"/.exec(line)?.[1] ?? 'unknown');
    return counts;
  }

  report(
    comparison: { rowsChecked: number; rejectedChecked: number; runsChecked: number; mismatches: Mismatch[] },
    runs: Counts,
    slicedScans: Counts,
    error?: string,
  ): SeedReport {
    const { events, ...setup } = this.setup;
    return {
      seed: this.options.seed,
      setup,
      events: events.length,
      changes: this.chaos.changes,
      malformed: this.chaos.malformed,
      faults: this.faults,
      faultsServed: this.faultsServedCount,
      process: this.process,
      runs,
      slicedScans,
      finalFullRuns: this.finalFullRuns,
      requests: { carecloud: this.careCloud.stats.requests, cin7: this.cin7.stats.requests },
      ...comparison,
      ...(error === undefined ? {} : { error }),
      logDir: this.logDir,
      durationMs: Date.now() - this.started,
      phases: this.phases,
    };
  }

  async close(keepLogs: boolean): Promise<void> {
    this.chaos.stop();
    await new Promise<void>((resolve) => (this.trace.writableEnded ? resolve() : this.trace.end(() => resolve())));
    await this.fleet.stop('SIGKILL').catch(() => undefined);
    await this.queues.close();
    await this.harness.close().catch(() => undefined);
    if (!keepLogs && process.env.CHAOS_KEEP_LOGS !== '1') rmSync(this.logDir, { recursive: true, force: true });
  }
}
