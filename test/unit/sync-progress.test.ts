import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { OnceView } from '../../jobs/run-once.ts';
import { createSyncProgress, describeView } from '../../src/cli/sync-progress.ts';

const view = (over: Partial<OnceView>): OnceView => ({
  source: 'cin7',
  state: 'running',
  waiting: null,
  pages: 12,
  records: 3000,
  requests: 12,
  estimatedTotal: 25_000,
  recordsPerSecond: 40,
  etaSeconds: 550,
  ...over,
});

describe('what npm run sync shows while it waits', () => {
  it('says what a run does in words: progress, the daily budget, the run it waits behind', () => {
    expect(describeView(view({}))).toBe('12 pages, 3,000 of ~25,000 records, 40/s, about 9 min 10 s left');
    const until = new Date('2026-12-02T10:00:00.000Z');
    expect(
      describeView(
        view({ state: 'waiting', waiting: { reason: 'daily_budget', until, behind: null }, etaSeconds: null }),
      ),
    ).toBe('waiting for the daily budget until 2026-12-02T10:00:00.000Z (12 pages, 3,000 of ~25,000 records so far)');
    expect(
      describeView(
        view({
          state: 'waiting',
          waiting: { reason: 'source_busy', until: null, behind: { runId: '7', mode: 'full', jobId: 'x' } },
          estimatedTotal: null,
          recordsPerSecond: null,
          etaSeconds: null,
        }),
      ),
    ).toBe('waiting behind run 7 (full) of this source; it has read 12 pages, 3,000 records');
  });

  it('without a terminal, prints a line when the state changes, and otherwise every interval', () => {
    const written: string[] = [];
    const output = new Writable({ write: (chunk, _enc, done) => (written.push(String(chunk)), done()) });
    const progress = createSyncProgress({ output, tty: false, everyMs: 60_000 });
    progress.update(view({ state: 'queued' }));
    progress.update(view({ state: 'queued' }));
    progress.update(view({ state: 'waiting', waiting: { reason: 'rate_limit', until: null, behind: null } }));
    progress.update(view({}));
    progress.update(view({ pages: 13 }));
    progress.stop();
    expect(written).toEqual([
      'cin7: queued\n',
      'cin7: waiting for the rate limit (12 pages, 3,000 of ~25,000 records so far)\n',
      'cin7: 12 pages, 3,000 of ~25,000 records, 40/s, about 9 min 10 s left\n',
    ]);
  });
});
