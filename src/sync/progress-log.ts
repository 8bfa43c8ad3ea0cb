/**
 * A long run says how far it has come: one info line every `everyPages` pages or `everyMs`, whichever comes first,
 * with pages, records, rate and ETA (src/status/eta.ts: the slower of the measured pace and the rate limit).
 */
import type { Logger } from '../logger.ts';
import { estimateEta } from '../status/eta.ts';
import type { Clock, RunCounters } from '../types.ts';

export interface ProgressLogOptions {
  logger: Logger;
  clock: Clock;
  /** When this row started: its rate is measured from here. */
  startedAt: Date;
  /** Records the earlier rows of the same logical run read: they count towards the total, not the rate. */
  before?: number;
  /** The tightest sustained request rate the source's limits allow (sustainedRate); null = unlimited. */
  requestsPerSecond: number | null;
  /** @default 50 */
  everyPages?: number;
  /** @default 30_000 */
  everyMs?: number;
}

export interface ProgressLog {
  /** What the scan expects in all, once known (a hint: see recordEstimate). */
  estimate(total: number | null): void;
  /** After a committed page: logs when N pages or the interval have passed since the last line. */
  page(counters: RunCounters): void;
  /** Logs now (a sliced run, whose pages other processes read, reports on a timer). */
  report(counters: RunCounters): void;
}

export function createProgressLog(options: ProgressLogOptions): ProgressLog {
  const { logger, clock, startedAt, before = 0, requestsPerSecond } = options;
  const everyPages = options.everyPages ?? 50;
  const everyMs = options.everyMs ?? 30_000;
  let total: number | null = null;
  let lastPages = 0;
  let lastAt = startedAt.getTime();
  const report = (counters: RunCounters) => {
    const now = clock.now().getTime();
    lastPages = counters.pages;
    lastAt = now;
    const { rate, etaSeconds } = estimateEta({
      done: counters.fetched,
      total: total === null ? null : Math.max(total - before, 0),
      elapsedSeconds: (now - startedAt.getTime()) / 1000,
      requests: counters.apiCalls,
      requestsPerSecond,
    });
    logger.info(
      {
        pages: counters.pages,
        records: before + counters.fetched,
        estimatedTotal: total,
        requests: counters.apiCalls,
        recordsPerSecond: rate === null ? null : Math.round(rate * 10) / 10,
        etaSeconds,
      },
      etaSeconds === null ? 'run in progress' : `run in progress, about ${formatDuration(etaSeconds)} left`,
    );
  };
  return {
    estimate(value) {
      total ??= value;
    },
    page(counters) {
      if (counters.pages - lastPages >= everyPages || clock.now().getTime() - lastAt >= everyMs) report(counters);
    },
    report,
  };
}

/** "1 h 05 min", "4 min 10 s", "12 s": for people, in logs and on the terminal. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}
