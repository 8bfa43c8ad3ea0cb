/**
 * `voucher-sync sync` as an operator runs it, a process of its own: Ctrl-C (SIGINT) or SIGTERM cancels the run it
 * started after its current page and exits 130, the run recorded `cancelled` and its job not retried; `--detach`
 * queues the run and exits 0 at once, leaving it to the service's workers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startService, type Service } from '../../jobs/service.ts';
import { createHarness, type Harness } from '../helpers/sync-harness.ts';
import { nodeArgsFor, runCommand } from '../helpers/run-command.ts';
import { queueOf, until } from '../helpers/steer.ts';

const MAIN = 'src/cli/main.ts';

let h: Harness | undefined;
let service: Service | undefined;
const children: ChildProcess[] = [];
afterEach(async () => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
  await service?.stop();
  service = undefined;
  await h?.close();
  h = undefined;
});

/** The command as a process this test can signal, run outside the repository as runCommand does. */
function spawnCommand(args: string[], env: Record<string, string>) {
  const child = spawn(process.execPath, [...nodeArgsFor(MAIN), ...args], {
    cwd: mkdtempSync(join(tmpdir(), 'voucher-sync-steer-')),
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const out = { stdout: '', stderr: '' };
  child.stdout!.on('data', (chunk: Buffer) => (out.stdout += String(chunk)));
  child.stderr!.on('data', (chunk: Buffer) => (out.stderr += String(chunk)));
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  return { child, out, exited };
}

describe('voucher-sync sync, stopped by a signal', () => {
  it('Ctrl-C and SIGTERM cancel the run it started after its page, and exit 130', async () => {
    // Both sources at once, one signal each: about 150 pages of Cin7 and 60 of CareCloud, slow enough to stop midway.
    h = await createHarness({
      cin7: { count: 1500, latencyMs: 40 },
      careCloud: { count: 1200, latencyMs: 100 },
      env: {
        CIN7_PAGE_SIZE: '10',
        CIN7_SLICE_PAGES: '100000',
        CARECLOUD_PAGE_SIZE: '20',
        CARECLOUD_SLICE_PAGES: '100000',
      },
    });
    const harness = h;
    const env = { ...harness.env, LOG_LEVEL: 'warn', LOG_FORMAT: 'json' };
    const commands = [
      {
        source: 'cin7',
        signal: 'SIGINT' as const,
        run: spawnCommand(['sync', '--source', 'cin7', '--mode', 'full'], env),
      },
      { source: 'carecloud', signal: 'SIGTERM' as const, run: spawnCommand(['sync', '--source', 'carecloud'], env) },
    ];
    await Promise.all(
      commands.map(async ({ source, signal, run }) => {
        const reading = await until(`${source} to read a few pages`, () =>
          harness.db.syncRun.findFirst({ where: { source, status: 'running', pages: { gte: 3 } } }),
        );
        run.child.kill(signal);
        const code = await run.exited;
        expect(code, run.out.stderr).toBe(130);
        expect(run.out.stderr).toContain('Cancelling: the run stops after its current page');
        expect(run.out.stdout).toMatch(
          new RegExp(`^${source}\\s+CANCELLED\\s+cancelled by voucher-sync sync, ${signal}`, 'm'),
        );
        expect(run.out.stdout).toContain(`run ${reading.id} had fetched`);

        const row = await harness.db.syncRun.findUniqueOrThrow({ where: { id: reading.id } });
        expect(row.status).toBe('cancelled');
        expect(row.cancelRequestedBy).toMatch(new RegExp(`^voucher-sync sync, ${signal}, `));
        expect(row.fetched).toBeGreaterThan(0);
        expect(await harness.db.voucher.count({ where: { source } })).toBeLessThan(1200);
        // The job is over, not failed nor queued again: nothing goes on reading after the command has gone.
        const job = (await queueOf(harness, source).getJob(row.jobId!))!;
        expect(await job.getState()).toBe('completed');
        expect(job.returnvalue.stop?.kind).toBe('cancelled');
        expect(await queueOf(harness, source).getJobCounts('waiting', 'active', 'delayed', 'failed')).toEqual({
          waiting: 0,
          active: 0,
          delayed: 0,
          failed: 0,
        });
      }),
    );
    expect(await harness.db.syncRun.count({ where: { status: { not: 'cancelled' } } })).toBe(0);
  }, 120_000);

  it('--detach queues the run and exits 0 at once; a worker started later reads it', async () => {
    h = await createHarness();
    const harness = h;
    const outcome = await runCommand(MAIN, ['sync', '--source', 'cin7', '--detach'], harness.env);
    expect(outcome.code, outcome.stderr).toBe(0);
    expect(outcome.stdout).toMatch(
      /^cin7: incremental run queued as job (cli-incremental-\S+); it goes on without this command, once a worker runs/m,
    );
    expect(outcome.stdout).toContain('voucher-sync status --watch');
    const jobId = /queued as job (\S+);/.exec(outcome.stdout)![1]!;
    const queue = queueOf(harness, 'cin7');
    expect(await (await queue.getJob(jobId))!.getState()).toBe('waiting');
    expect(await harness.db.syncRun.count()).toBe(0);
    expect(harness.cin7.stats.requests).toBe(0);

    service = await startService(harness.config, harness.logger, { schedulers: false, only: ['cin7'] });
    const run = await until('the detached run to end', () =>
      harness.db.syncRun.findFirst({ where: { jobId, status: { not: 'running' } } }),
    );
    expect(run.status).toBe('succeeded');
    expect(await harness.db.voucher.count({ where: { source: 'cin7' } })).toBe(run.inserted);
  }, 90_000);
});
