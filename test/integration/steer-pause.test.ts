/**
 * `voucher-sync pause` and `resume`, as an operator runs them: the pause is kept in Postgres (it outlives Redis'
 * data), the schedulers' runs of a paused source are skipped rather than queued up, `sync` is refused naming
 * `resume`, the status says since when and by whom, and a run under way when the source was paused goes on to its end.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startService, type Service } from '../../jobs/service.ts';
import { pauseSource } from '../../src/db/source-control.ts';
import { formatStatus } from '../../src/status/format-status.ts';
import { readStatus } from '../../src/status/read-status.ts';
import { createHarness, type Harness } from '../helpers/sync-harness.ts';
import { runCommand } from '../helpers/run-command.ts';
import { queueOf, until } from '../helpers/steer.ts';

const MAIN = 'src/cli/main.ts';

let h: Harness | undefined;
let service: Service | undefined;
afterEach(async () => {
  await service?.stop();
  service = undefined;
  await h?.close();
  h = undefined;
});

describe('voucher-sync pause and resume', () => {
  it('skips the scheduled runs of a paused source, outlives Redis, refuses sync, and resumes', async () => {
    h = await createHarness({ env: { CIN7_SCHEDULE: '1s', CIN7_RECONCILE_SCHEDULE: 'off' } });
    const harness = h;
    const paused = await runCommand(MAIN, ['pause', '--source', 'cin7'], harness.env);
    expect(paused.code, paused.stderr).toBe(0);
    expect(paused.stdout).toMatch(
      /^cin7 paused at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ by voucher-sync pause, \S+: its scheduled runs are skipped until voucher-sync resume --source cin7\.$/m,
    );
    const control = await harness.db.sourceControl.findUniqueOrThrow({ where: { source: 'cin7' } });
    expect(control.pausedBy).toMatch(/^voucher-sync pause, /);

    // Redis loses its data: the pause is in Postgres, and the status still says so.
    const keys = await harness.redis.keys(`${harness.prefix}*`);
    if (keys.length > 0) await harness.redis.del(...keys);
    const report = await readStatus({ db: harness.db, redis: harness.redis, config: harness.config });
    const cin7 = report.sources.find((s) => s.source === 'cin7')!;
    expect(cin7).toMatchObject({
      state: 'paused',
      paused: { since: control.pausedAt!.toISOString(), by: control.pausedBy },
    });
    expect(report.sources.find((s) => s.source === 'carecloud')!.paused).toBeNull();
    expect(formatStatus(report)).toMatch(
      /^ {2}paused +since .+ by voucher-sync pause, .+: scheduled runs are skipped/m,
    );

    // Its scheduler fires every second: each run is skipped at once, none piles up, nothing is read.
    service = await startService(harness.config, harness.logger, { only: ['cin7'] });
    const queue = queueOf(harness, 'cin7');
    const skipped = await until('three skipped runs', async () => {
      const done = await queue.getCompleted();
      return done.filter((j) => j.returnvalue?.stop?.kind === 'skipped').length >= 3 && done;
    });
    expect(skipped[0]!.returnvalue.stop!.reason).toMatch(/^the source is paused since .+ by voucher-sync pause, /);
    const counts = await queue.getJobCounts('waiting', 'delayed', 'active');
    expect((counts.waiting ?? 0) + (counts.delayed ?? 0) + (counts.active ?? 0)).toBeLessThanOrEqual(2);
    expect(await harness.db.syncRun.count({ where: { source: 'cin7' } })).toBe(0);
    expect(harness.cin7.stats.requests).toBe(0);
    expect(harness.logLines.join('')).toContain('scheduled run skipped: the source is paused since');

    // Asked for explicitly, a run is refused, naming resume; pausing again keeps the first pause.
    const [sync, again] = await Promise.all([
      runCommand(MAIN, ['sync', '--source', 'cin7'], harness.env),
      runCommand(MAIN, ['pause', '--source', 'cin7'], harness.env),
    ]);
    expect(sync.code).toBe(1);
    expect(sync.stderr.trim().split('\n')).toEqual([
      'cin7 is paused: no run is started until voucher-sync resume --source cin7',
    ]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('cin7 is already paused, since');

    const resumed = await runCommand(MAIN, ['resume', '--source', 'cin7'], harness.env);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stdout).toMatch(/^cin7 resumed \(it was paused since .+\): its schedules run again/m);
    expect((await harness.db.sourceControl.findUniqueOrThrow({ where: { source: 'cin7' } })).pausedAt).toBeNull();
    const run = await until('a scheduled run to succeed', () =>
      harness.db.syncRun.findFirst({ where: { source: 'cin7', status: 'succeeded' } }),
    );
    expect(run.mode).toBe('incremental');
    expect(harness.cin7.stats.requests).toBeGreaterThan(0);
  }, 120_000);

  it('lets a run under way when the source is paused go on to its end', async () => {
    h = await createHarness({
      cin7: { count: 600, latencyMs: 40 },
      env: { CIN7_PAGE_SIZE: '10', CIN7_SLICE_PAGES: '100000' },
    });
    const harness = h;
    service = await startService(harness.config, harness.logger, { schedulers: false, only: ['cin7'] });
    const queue = queueOf(harness, 'cin7');
    await queue.add('full', { mode: 'full', requestedBy: 'scheduler' }, { jobId: 'under-way' });
    await until('the run to read', () =>
      harness.db.syncRun.findFirst({ where: { jobId: 'under-way', status: 'running', pages: { gte: 2 } } }),
    );
    await pauseSource(harness.db, 'cin7', 'a test', new Date());
    const ended = await until('the run to end', () =>
      harness.db.syncRun.findFirst({ where: { jobId: 'under-way', status: { not: 'running' } } }),
    );
    expect(ended.status).toBe('succeeded');
    expect(await harness.db.voucher.count({ where: { source: 'cin7' } })).toBe(600);
  }, 60_000);

  it('exits 2 with one line on each bad argument', async () => {
    const cases: [string[], string][] = [
      [['pause'], "required option '--source <name>' not specified"],
      [['resume', '--source', 'nowhere'], "'nowhere' is invalid"],
      [['pause', '--source', 'cin7', '--all'], "unknown option '--all'"],
    ];
    const outcomes = await Promise.all(cases.map(([args]) => runCommand(MAIN, args, {})));
    outcomes.forEach((outcome, i) => {
      expect(outcome.code).toBe(2);
      expect(outcome.stderr.trim().split('\n')).toHaveLength(1);
      expect(outcome.stderr).toContain(cases[i]![1]);
    });
  }, 60_000);
});
