/**
 * A seeded chaos schedule: pure data, the same for the same seed and profile. What happens when it is played
 * against real processes also depends on timing (which page a hook lands on, which run a kill hits), so a
 * failing seed is re-run with CHAOS_SEEDS=<seed> and its logs are kept.
 */
import { CARECLOUD_MALFORMED_KINDS, type CareCloudMalformedKind } from '../../src/fake/carecloud-store.ts';
import { CIN7_MALFORMED_KINDS, type Cin7MalformedKind } from '../../src/fake/cin7-store.ts';
import type { Fault, FaultTarget } from '../../src/fake/fault-queue.ts';
import { createRandom, type Random } from '../../src/fake/random.ts';
import type { SourceName } from './queue-runs.ts';

/** A change to a source's data. `pick` in [0, 1) chooses the record, so that applying it stays deterministic. */
export type Change =
  | { source: 'carecloud'; op: 'update' | 'soft-delete' | 'hard-delete'; pick: number }
  /**
   * Many records at once, next to the page requested: hard deletes just before it (rows pulled up by more
   * than the overlap), or updates just after it (rows pushed down as the changed records jump away).
   */
  | { source: SourceName; op: 'hard-delete-burst' | 'update-burst'; count: number; pick: number }
  | { source: 'carecloud'; op: 'insert'; count: number }
  | { source: 'carecloud'; op: 'same-second'; inserts: number; updates: number; pick: number }
  | { source: 'cin7'; op: 'redeem' | 'update' | 'hard-delete'; pick: number }
  | { source: 'cin7'; op: 'insert'; count: number }
  | { source: 'cin7'; op: 'same-second'; inserts: number; pick: number };

export type ChaosEvent =
  /** Applied at once, between or during runs, wherever they stand. */
  | { at: number; kind: 'change'; change: Change }
  /**
   * Armed at `at`, applied just before the `afterRequests`-th list request of the source after that is
   * served: while a scan pages. With `boundary`, the change hits a record at the edge of the page requested.
   */
  | {
      at: number;
      kind: 'during-paging';
      change: Change;
      afterRequests: number;
      boundary: boolean;
      repeat: number;
      deepOnly: boolean;
    }
  | { at: number; kind: 'fault'; source: SourceName; fault: Fault; times: number; on: FaultTarget; label: string }
  | { at: number; kind: 'expire-tokens' }
  | { at: number; kind: 'malformed'; source: 'carecloud'; malformed: CareCloudMalformedKind }
  | { at: number; kind: 'malformed'; source: 'cin7'; malformed: Cin7MalformedKind }
  /** SIGKILL (or SIGTERM) a worker at a random moment, whatever it is doing. */
  | { at: number; kind: 'kill-worker'; worker: number; signal: 'SIGKILL' | 'SIGTERM'; downMs: number }
  /** Wait until the ledger shows a run of `source` running, wait `delayMs` more, SIGKILL the worker running it. */
  | { at: number; kind: 'kill-during-run'; source: SourceName; delayMs: number; downMs: number }
  | { at: number; kind: 'restart-scheduler'; signal: 'SIGKILL' | 'SIGTERM'; downMs: number }
  | { at: number; kind: 'enqueue'; source: SourceName; mode: 'incremental' | 'full' }
  /**
   * A deep incremental scan under fire: a 429 whose Retry-After pauses the source's queue for `holdMs`,
   * `changes` single changes spread over that time (each in its own second), then hard-delete bursts of
   * `burst` records just before the pages the scan that follows requests. The changes span more than the
   * lookback, so a record that scan skips is not re-read by the next incremental run.
   */
  | {
      at: number;
      kind: 'deep-scan';
      source: SourceName;
      holdMs: number;
      changes: Change[];
      burst: number;
      burstAt: number[];
    }
  /** A steady stream of single changes over `spanMs`, so that every incremental run has several pages to read. */
  | { at: number; kind: 'stream'; source: SourceName; spanMs: number; changes: Change[] };

export interface ChaosProfile {
  /** Length of the chaos window in ms. */
  durationMs: number;
  changes: number;
  pagingChanges: number;
  faults: number;
  workerKills: number;
  killsDuringRun: number;
  schedulerRestarts: number;
  enqueues: number;
  /** Deep incremental scans under fire (see the `deep-scan` event). */
  deepScans: number;
  /** CareCloud hard-delete bursts of more than the overlap, on a second or later page of an incremental scan. */
  deepBursts: number;
  /** Single changes per second made all through the window. */
  streamPerSecond: Record<SourceName, number>;
  /**
   * SIGKILL a worker only while no job is active; otherwise SIGTERM it. A worker killed holding a job
   * blocks its source for up to a minute (BullMQ's lock): too long for the fast subset.
   */
  killOnlyWhenIdle?: boolean;
  workers: number;
  /** Vouchers generated per source, [min, max]. */
  count: [number, number];
}

export interface SeedSetup {
  careCloud: { count: number; pageSize: number; overlap: number };
  cin7: { count: number; pageSize: number };
  /**
   * Odd seeds: no full scan during the chaos (incremental runs carry it alone, so that a row one of them
   * skipped stays wrong until the check after the final incremental run, instead of being repaired and
   * hidden by a full scan). Even seeds: the scheduler and the explicit requests add full scans.
   */
  frequentFullScans: boolean;
  /** Page size of the fakes' data generation seed: the seed itself. */
  events: ChaosEvent[];
}

/** Client read timeout the schedule's slow responses are measured against (HTTP_READ_TIMEOUT). */
export const READ_TIMEOUT_MS = 1000;
/** HTTP_MAX_INLINE_WAIT: a longer Retry-After pauses the queue instead. */
export const MAX_INLINE_WAIT_MS = 1500;

function faultFor(random: Random, source: SourceName): { fault: Fault; times: number; on: FaultTarget; label: string } {
  const targets: FaultTarget[] =
    source === 'carecloud' ? ['list', 'list', 'get', 'login', 'any'] : ['list', 'list', 'get', 'any'];
  const on = random.pick(targets);
  switch (random.int(0, 9)) {
    case 0:
      return {
        fault: { kind: 'status', status: 429, retryAfter: 1 },
        times: random.int(1, 2),
        on,
        label: '429 Retry-After 1s (inline)',
      };
    case 1:
      return {
        fault: { kind: 'status', status: 429, retryAfter: random.int(2, 4) },
        times: 1,
        on,
        label: '429 Retry-After >inline (queue pause)',
      };
    case 2:
      return { fault: { kind: 'status', status: 429 }, times: random.int(1, 4), on, label: '429 without Retry-After' };
    case 3:
      return { fault: { kind: 'status', status: 503 }, times: random.int(2, 7), on, label: '503 burst' };
    case 4:
      return {
        fault: { kind: 'delay', ms: READ_TIMEOUT_MS + random.int(300, 1500) },
        times: random.int(1, 3),
        on,
        label: 'slow response past the read timeout',
      };
    case 5:
      return {
        fault: { kind: 'html', status: random.pick([200, 502] as const) },
        times: random.int(1, 2),
        on,
        label: 'HTML error page',
      };
    case 6:
      return { fault: { kind: 'truncated' }, times: random.int(1, 2), on, label: 'truncated JSON' };
    case 7:
      return { fault: { kind: 'empty' }, times: random.int(1, 2), on, label: 'empty body' };
    case 8:
      return {
        fault: { kind: 'oversize', by: random.int(1, 12) },
        times: random.int(1, 3),
        on: 'list',
        label: 'oversize page',
      };
    default:
      return {
        fault: { kind: 'undersize', by: random.int(1, 12) },
        times: random.int(1, 3),
        on: 'list',
        label: 'undersize page',
      };
  }
}

function changeFor(random: Random, source: SourceName, pageSize: number, paging = false): Change {
  const pick = random.next();
  if (paging && random.chance(0.3)) {
    return {
      source,
      op: random.chance(0.6) ? 'hard-delete-burst' : 'update-burst',
      count: random.int(2, pageSize + 5),
      pick,
    };
  }
  if (source === 'carecloud') {
    const roll = random.int(0, 19);
    if (roll < 7) return { source, op: 'update', pick };
    if (roll < 10) return { source, op: 'insert', count: random.int(1, 5) };
    if (roll < 13) return { source, op: 'soft-delete', pick };
    if (roll < 17) return { source, op: 'hard-delete', pick };
    return {
      source,
      op: 'same-second',
      inserts: random.int(Math.ceil(pageSize / 2), pageSize * 2),
      updates: random.int(0, pageSize),
      pick,
    };
  }
  const roll = random.int(0, 19);
  if (roll < 8) return { source, op: 'redeem', pick };
  if (roll < 10) return { source, op: 'update', pick };
  if (roll < 13) return { source, op: 'insert', count: random.int(1, 5) };
  if (roll < 17) return { source, op: 'hard-delete', pick };
  return { source, op: 'same-second', inserts: random.int(Math.ceil(pageSize / 2), pageSize * 2), pick };
}

export function createSchedule(seed: number, profile: ChaosProfile): SeedSetup {
  const random = createRandom(seed * 7919 + 17);
  const careCloud = { count: random.int(...profile.count), pageSize: random.int(12, 35), overlap: random.int(2, 5) };
  const cin7 = { count: random.int(...profile.count), pageSize: random.int(15, 45) };
  const frequentFullScans = seed % 2 === 0;
  const pageSizes: Record<SourceName, number> = { carecloud: careCloud.pageSize, cin7: cin7.pageSize };
  const window = profile.durationMs;
  const at = (from = 0, to = 0.9) => Math.round(window * (from + random.next() * (to - from)));
  const source = (): SourceName => (random.chance(0.5) ? 'carecloud' : 'cin7');
  const events: ChaosEvent[] = [];

  for (let i = 0; i < profile.changes; i++) {
    const s = source();
    events.push({ at: at(), kind: 'change', change: changeFor(random, s, pageSizes[s]) });
  }
  for (let i = 0; i < profile.pagingChanges; i++) {
    const s = source();
    const change = changeFor(random, s, pageSizes[s], true);
    const burst = change.op === 'hard-delete-burst' || change.op === 'update-burst';
    events.push({
      at: at(),
      kind: 'during-paging',
      change,
      afterRequests: random.int(1, 6),
      boundary: burst || random.chance(0.6),
      repeat: random.chance(0.3) ? random.int(2, 5) : 1,
      // Bursts wait for the second or a later page of an incremental scan, where a skip would stay hidden.
      deepOnly: burst && random.chance(0.7),
    });
  }
  for (let i = 0; i < profile.faults; i++) {
    const s = source();
    events.push({ at: at(), kind: 'fault', source: s, ...faultFor(random, s) });
  }
  for (let i = 0, n = Math.max(1, Math.round(profile.faults / 8)); i < n; i++)
    events.push({ at: at(), kind: 'expire-tokens' });
  for (const malformed of CARECLOUD_MALFORMED_KINDS)
    events.push({ at: at(), kind: 'malformed', source: 'carecloud', malformed });
  for (const malformed of CIN7_MALFORMED_KINDS) events.push({ at: at(), kind: 'malformed', source: 'cin7', malformed });
  for (let i = 0; i < profile.workerKills; i++) {
    events.push({
      at: at(),
      kind: 'kill-worker',
      worker: random.int(0, profile.workers - 1),
      signal: random.chance(0.75) ? 'SIGKILL' : 'SIGTERM',
      downMs: random.int(0, 2000),
    });
  }
  // Killed while holding a run, a worker blocks its source until BullMQ's lock expires (about a minute):
  // early in the window, so that the final runs do not spend the whole minute waiting.
  for (let i = 0; i < profile.killsDuringRun; i++) {
    events.push({
      at: at(0, 0.3),
      kind: 'kill-during-run',
      source: source(),
      delayMs: random.int(0, 400),
      downMs: random.int(0, 2000),
    });
  }
  for (let i = 0; i < profile.schedulerRestarts; i++) {
    events.push({
      at: at(),
      kind: 'restart-scheduler',
      signal: random.chance(0.5) ? 'SIGKILL' : 'SIGTERM',
      downMs: random.int(0, 3000),
    });
  }
  for (const s of ['carecloud', 'cin7'] as const) {
    const spanMs = Math.round(window * 0.85);
    const changes = Array.from({ length: Math.round((profile.streamPerSecond[s] * spanMs) / 1000) }, (): Change => {
      const pick = random.next();
      if (s === 'cin7')
        return random.chance(0.6) ? { source: s, op: 'insert', count: 1 } : { source: s, op: 'redeem', pick };
      return random.chance(0.75) ? { source: s, op: 'update', pick } : { source: s, op: 'insert', count: 1 };
    });
    events.push({ at: 0, kind: 'stream', source: s, spanMs, changes });
  }
  for (let i = 0; i < profile.deepBursts; i++) {
    const count = random.int(careCloud.overlap + 1, careCloud.pageSize + 3);
    events.push({
      at: at(),
      kind: 'during-paging',
      change: { source: 'carecloud', op: 'hard-delete-burst', count, pick: random.next() },
      afterRequests: random.int(1, 2),
      boundary: true,
      repeat: 1,
      deepOnly: true,
    });
  }
  for (let i = 0; i < profile.deepScans; i++) {
    const s: SourceName = i === 0 ? 'carecloud' : source();
    // Long enough to span more than the lookback, short enough to leave the deep scan inside the window.
    const holdMs = Math.min(random.int(5000, 9000), Math.round(window * 0.3));
    const changes = Array.from({ length: random.int(4, 6) * pageSizes[s] }, (): Change =>
      s === 'carecloud' ? { source: s, op: 'update', pick: random.next() } : { source: s, op: 'insert', count: 1 },
    );
    events.push({
      at: at(0.05, 0.45),
      kind: 'deep-scan',
      source: s,
      holdMs,
      changes,
      burst: random.int(3, pageSizes[s] + 5),
      burstAt: [1, 2, 3, 4, 5, 6].filter(() => random.chance(0.6)),
    });
  }
  for (let i = 0; i < profile.enqueues; i++) {
    const full = random.chance(0.4);
    events.push({
      at: at(),
      kind: 'enqueue',
      source: source(),
      mode: frequentFullScans && full ? 'full' : 'incremental',
    });
  }

  events.sort((a, b) => a.at - b.at);
  return { careCloud, cin7, frequentFullScans, events };
}

/** Infrastructure events shared by every seed of a batch (one PostgreSQL, one Redis). */
export interface InfraEvent {
  at: number;
  kind: 'restart-redis' | 'restart-postgres';
  downMs: number;
}

export function createInfraSchedule(
  batchSeed: number,
  durationMs: number,
  restarts: { redis: number; postgres: number },
): InfraEvent[] {
  const random = createRandom(batchSeed * 104_729 + 3);
  const events: InfraEvent[] = [];
  const at = () => Math.round(durationMs * (0.1 + random.next() * 0.55));
  for (let i = 0; i < restarts.redis; i++)
    events.push({ at: at(), kind: 'restart-redis', downMs: random.int(0, 2000) });
  for (let i = 0; i < restarts.postgres; i++) events.push({ at: at(), kind: 'restart-postgres', downMs: 0 });
  return events.sort((a, b) => a.at - b.at);
}
