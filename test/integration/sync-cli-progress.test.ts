/**
 * `npm run sync`, run as an operator runs it, while a run of the source is already under way: it says it waits behind
 * that run, shows progress, and prints the totals of the logical run it asked for — all of its rows, however many
 * waits it took — not those of another run or of its last row.
 */
import { Queue } from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';
import { startService, type Service } from '../../jobs/service.ts';
import type { SyncJobData, SyncJobResult } from '../../jobs/queues.ts';
import { logicalRunTotals } from '../../src/db/ledger.ts';
import { createHarness, type Harness } from '../helpers/sync-harness.ts';
import { runCommand } from '../helpers/run-command.ts';

let h: Harness | undefined;
let service: Service | undefined;
afterEach(async () => {
  await service?.stop();
  service = undefined;
  await h?.close();
  h = undefined;
});

describe('npm run sync tells the truth', () => {
  it('waits behind the run under way, saying so, then prints the totals of its own logical run', async () => {
    h = await createHarness({
      cin7: { count: 500, latencyMs: 20 },
      // Pages of 10 at 30 requests per 5 s: each run outgrows the window and waits (1 s inline at most) several times.
      env: {
        CIN7_PAGE_SIZE: '10',
        CIN7_SLICE_PAGES: '100000',
        CIN7_RATE_LIMIT: '30/5s',
        HTTP_MAX_INLINE_WAIT: '1s',
        CARECLOUD_BASE_URL: '',
        CARECLOUD_LOGIN: '',
        CARECLOUD_PASSWORD: '',
        CARECLOUD_APP_ID: '',
        CARECLOUD_TIMEZONE: '',
      },
    });
    const harness = h;
    service = await startService(harness.config, harness.logger, { schedulers: false, only: ['cin7'] });
    const queue = new Queue<SyncJobData, SyncJobResult>('cin7', { connection: harness.redis, prefix: harness.prefix });
    try {
      await queue.add('full', { mode: 'full', requestedBy: 'scheduler' }, { jobId: 'under-way' });
      const first = await waitForRow(harness, 'under-way');
      // The run under way takes its time: long enough for the command to start and find it there.
      harness.cin7.faults.inject({ kind: 'delay', ms: 20_000 }, { on: 'list' });
      const outcome = await runCommand(
        'src/cli/main.ts',
        ['sync', '--source', 'cin7', '--mode', 'full'],
        { ...harness.env, LOG_LEVEL: 'warn', LOG_FORMAT: 'json' },
        { timeoutMs: 120_000 },
      );
      expect(outcome.code, outcome.stderr + outcome.stdout).toBe(0);

      const runs = await harness.db.syncRun.findMany({ orderBy: { id: 'asc' } });
      const mine = runs.filter((r) => r.jobId?.startsWith('cli-full-'));
      // Its run took several rows (it waited for the rate limit in between): one logical run.
      expect(mine.length).toBeGreaterThanOrEqual(2);
      expect(new Set(mine.map((r) => r.logicalRunId))).toEqual(new Set([mine[0]!.id]));
      expect(mine[0]!.startedAt.getTime()).toBeGreaterThanOrEqual(
        runs
          .filter((r) => r.jobId === 'under-way')
          .at(-1)!
          .finishedAt!.getTime(),
      );
      const totals = await logicalRunTotals(harness.db, mine[0]!.id);
      expect(totals.fetched).toBeGreaterThanOrEqual(500);
      expect(outcome.stdout).toMatch(
        new RegExp(
          `cin7\\s+ok\\s+fetched ${totals.fetched}, inserted ${totals.inserted}, updated ${totals.updated}, unchanged ${totals.unchanged}, rejected 0, deleted 0, ${totals.apiCalls} API calls`,
        ),
      );
      // It said, while it waited, what it waited for, and how far that run had come.
      expect(outcome.stderr).toMatch(
        new RegExp(`cin7: waiting behind run ${first.logicalRunId} \\(full\\) of this source.*it has read \\d+ pages`),
      );
      expect(outcome.stdout).toMatch(new RegExp(`waited [\\d.]+ s behind run ${first.logicalRunId} \\(full\\)`));
      // And how far its own run had come.
      expect(outcome.stderr).toMatch(/cin7: \d+ pages, \d+ records/);
    } finally {
      await queue.close();
    }
  }, 150_000);
});

async function waitForRow(harness: Harness, jobId: string) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const row = await harness.db.syncRun.findFirst({ where: { jobId } });
    if (row && row.pages > 0) return row;
    if (Date.now() > deadline) throw new Error(`no run of job ${jobId}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
