/**
 * `npm run status` as an operator runs it: a process of its own, against the real Postgres, Redis and fakes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { startService, type Service } from '../../jobs/service.ts';
import { readStatus } from '../../src/status/read-status.ts';
import type { SourceStatus, StatusReport } from '../../src/status/types.ts';
import { dropTestDatabase, TEST_SERVER_URL, uniqueDatabaseUrl } from '../helpers/db.ts';
import { nodeArgsFor, runCommand } from '../helpers/run-command.ts';
import { createHarness, REDIS_URL, type Harness } from '../helpers/sync-harness.ts';

const CLI = 'src/cli/main.ts';

let h: Harness | undefined;
let service: Service | undefined;
const databases: string[] = [];
const children: ChildProcess[] = [];

afterEach(async () => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
  await service?.stop();
  service = undefined;
  await h?.close();
  h = undefined;
  for (const name of databases.splice(0)) await dropTestDatabase(name);
});

/** The command as a process this test can stop, run outside the repository as runCommand does. */
function spawnCommand(script: string, args: string[], env: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, [...nodeArgsFor(script), ...args], {
    cwd: mkdtempSync(join(tmpdir(), 'voucher-sync-status-')),
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  return child;
}

const sourceOf = (report: StatusReport, name: string): SourceStatus => report.sources.find((s) => s.source === name)!;

async function statusJson(env: Record<string, string>, args: string[] = []): Promise<StatusReport> {
  const outcome = await runCommand(CLI, ['status', '--json', ...args], env);
  expect(outcome.stderr).toBe('');
  expect(outcome.code).toBe(0);
  return JSON.parse(outcome.stdout) as StatusReport;
}

async function databaseExists(name: string): Promise<boolean> {
  const admin = new pg.Client({ connectionString: `${TEST_SERVER_URL}/postgres` });
  await admin.connect();
  try {
    return (await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount === 1;
  } finally {
    await admin.end();
  }
}

describe('npm run status', () => {
  it('--json during a backfill: running, its progress, and an ETA that falls between two reads', async () => {
    // 6,000 vouchers read 50 a request at 4 requests a second: over half a minute of backfill, in one piece (a
    // slice plan would spend the first seconds planning), its total known from CareCloud's first page.
    h = await createHarness({
      careCloud: { count: 6000 },
      env: { CARECLOUD_PAGE_SIZE: '50', CARECLOUD_RATE_LIMIT: '4/s', CARECLOUD_SLICE_PAGES: '100000' },
    });
    const harness = h;
    service = await startService(harness.config, harness.logger, { schedulers: false, only: ['carecloud'] });
    await service.queues.get('carecloud')!.add('incremental', { mode: 'incremental', requestedBy: 'cli' });
    const deadline = Date.now() + 30_000;
    for (;;) {
      const report = await readStatus({ db: harness.db, redis: harness.redis, config: harness.config });
      if ((sourceOf(report, 'carecloud').run?.etaSeconds ?? null) !== null) break;
      if (Date.now() > deadline) throw new Error(`no ETA yet: ${JSON.stringify(sourceOf(report, 'carecloud'))}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }

    const first = sourceOf(await statusJson(harness.env, ['--source', 'carecloud']), 'carecloud');
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const second = await statusJson(harness.env, ['--source', 'carecloud']);
    expect(second.sources.map((s) => s.source)).toEqual(['carecloud']);
    expect(second.serviceUp).toBe(true);
    const later = sourceOf(second, 'carecloud');
    for (const read of [first, later]) {
      expect(read.state).toBe('running');
      expect(read.run).toMatchObject({ mode: 'incremental', estimatedTotal: expect.any(Number) });
      expect(read.run!.pages).toBeGreaterThan(0);
      expect(read.run!.requests).toBeGreaterThan(0);
      expect(read.run!.rate).toBeGreaterThan(0);
    }
    expect(first.run!.estimatedTotal).toBeGreaterThanOrEqual(5900);
    expect(later.run!.records).toBeGreaterThan(first.run!.records);
    expect(later.run!.etaSeconds!).toBeLessThan(first.run!.etaSeconds!);
    expect(later.run!.id).toBe(first.run!.id);
  }, 120_000);

  it('--check exits 0 while every source is fresh and 1 once one fails; the text says the service is down', async () => {
    h = await createHarness();
    const harness = h;
    await harness.sync('carecloud');
    await harness.sync('cin7');
    const healthy = await runCommand(CLI, ['status', '--check'], harness.env);
    expect(healthy.code).toBe(0);
    expect(healthy.stdout).toContain('service: DOWN (no worker heartbeat)');
    expect(healthy.stdout).toMatch(/^carecloud {2}IDLE$/m);
    expect(healthy.stdout).toMatch(/^cin7 {2}IDLE$/m);
    expect(healthy.stdout).toMatch(/last success +\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ \(\d+s ago\)/);

    await harness.db.syncRun.create({
      data: {
        source: 'cin7',
        stream: 'vouchers',
        mode: 'incremental',
        status: 'failed',
        error: 'Cin7 answered 503',
        finishedAt: new Date(),
      },
    });
    const [failing, json] = await Promise.all([
      runCommand(CLI, ['status', '--check'], harness.env),
      statusJson(harness.env),
    ]);
    expect(failing.code).toBe(1);
    expect(failing.stdout).toMatch(/^cin7 {2}FAILING$/m);
    expect(failing.stdout).toContain('1 in a row; last at');
    expect(failing.stdout).toContain('Cin7 answered 503');
    expect(sourceOf(json, 'cin7')).toMatchObject({ state: 'failing', consecutiveFailures: 1 });
    // Only the source asked about counts.
    expect((await runCommand(CLI, ['status', '--check', '--source', 'carecloud'], harness.env)).code).toBe(0);
  }, 120_000);

  it('--watch prints a new report every interval when its output is not a terminal, until stopped', async () => {
    h = await createHarness();
    const child = spawnCommand(CLI, ['status', '--watch', '1', '--json'], h.env);
    let stdout = '';
    child.stdout!.on('data', (chunk: Buffer) => (stdout += String(chunk)));
    const exited = once(child, 'exit');
    const deadline = Date.now() + 40_000;
    while (stdout.split('\n').length < 3 && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 200));
    child.kill('SIGINT');
    const [code] = await exited;
    expect(code).toBe(0);
    const reports = stdout
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line) as StatusReport);
    expect(reports.length).toBeGreaterThanOrEqual(2);
    expect(new Set(reports.map((r) => r.at)).size).toBe(reports.length);
  });

  it('neither creates nor migrates a database: one line and exit 1 when it is missing or empty', async () => {
    const missing = uniqueDatabaseUrl();
    const env = { REDIS_URL, QUEUE_PREFIX: `vs-status-${missing.name}` };
    const absent = await runCommand(CLI, ['status'], { ...env, DATABASE_URL: missing.url });
    expect(absent.code).toBe(1);
    expect(absent.stderr.trim().split('\n')).toEqual([
      `database postgres@127.0.0.1:5432/${missing.name} (DATABASE_URL) does not exist: run npm run db:migrate`,
    ]);
    expect(await databaseExists(missing.name)).toBe(false);

    const empty = uniqueDatabaseUrl();
    const admin = new pg.Client({ connectionString: `${TEST_SERVER_URL}/postgres` });
    await admin.connect();
    await admin.query(`CREATE DATABASE "${empty.name}"`);
    await admin.end();
    databases.push(empty.name);
    const bare = await runCommand(CLI, ['status', '--check'], { ...env, DATABASE_URL: empty.url });
    expect(bare.code).toBe(1);
    expect(bare.stderr.trim().split('\n')).toEqual([
      `database postgres@127.0.0.1:5432/${empty.name} has no voucher-sync tables: run npm run db:migrate`,
    ]);
  });

  it.each([
    [['--watch', 'soon'], '--watch takes a number of seconds'],
    [['--watch', '0'], '--watch takes a number of seconds'],
    [['--source', 'nowhere'], "argument 'nowhere' is invalid. Allowed choices are carecloud, cin7."],
    [['--check', '--watch'], 'cannot be combined with --watch'],
    [['--verbose'], "unknown option '--verbose'"],
    [['extra'], "too many arguments for 'status'"],
  ])('exits 2 on bad arguments: %j', async (args, message) => {
    const outcome = await runCommand(CLI, ['status', ...args], {});
    expect(outcome.code).toBe(2);
    expect(outcome.stderr).toContain(message);
    expect(outcome.stderr.trim().split('\n')).toHaveLength(1);
  });
});
