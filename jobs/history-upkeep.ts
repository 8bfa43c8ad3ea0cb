/**
 * The history's scheduled upkeep, run by every scheduler process, outside every sync transaction:
 * - every minute, the versions pages opened (voucher_daily_pending) are folded into the days reporting.voucher_daily
 *   sums;
 * - every hour, when HISTORY_RETENTION is set, the versions that closed longer ago are pruned, in batches.
 * Several schedulers may run it: compaction is safe beside anything, and an advisory lock lets one prune at a time.
 */
import type { Db } from '../src/db/client.ts';
import { foldDailyChanges, pruneHistory } from '../src/db/history.ts';
import type { Logger } from '../src/logger.ts';

export interface HistoryUpkeepOptions {
  db: Db;
  /** HISTORY_RETENTION in ms; null keeps every version. */
  retentionMs: number | null;
  logger: Logger;
  /** How often the daily changes are folded. Default one minute. */
  compactEveryMs?: number;
  /** How often versions are pruned. Default one hour. */
  pruneEveryMs?: number;
}

export function startHistoryUpkeep(options: HistoryUpkeepOptions): { stop(): Promise<void> } {
  const controller = new AbortController();
  let running: Promise<void> = Promise.resolve();
  let lastPrune = 0;
  const pruneEveryMs = options.pruneEveryMs ?? 60 * 60_000;
  const tick = () => {
    running = running.then(async () => {
      try {
        await foldDailyChanges(options.db);
        if (options.retentionMs !== null && Date.now() - lastPrune >= pruneEveryMs) {
          lastPrune = Date.now();
          const endedBefore = new Date(Date.now() - options.retentionMs);
          const deleted = await pruneHistory(options.db, { endedBefore, signal: controller.signal });
          if (deleted > 0) options.logger.info({ deleted, endedBefore }, 'pruned voucher history');
        }
      } catch (error) {
        if (!controller.signal.aborted)
          options.logger.warn({ err: error }, 'could not keep the voucher history up; will try again');
      }
    });
  };
  const timer = setInterval(tick, options.compactEveryMs ?? 60_000);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      controller.abort();
      await running;
    },
  };
}
