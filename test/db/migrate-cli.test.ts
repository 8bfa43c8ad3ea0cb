/**
 * `npm run db:migrate` as an operator runs it: a real process, configured by environment variables.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { dropTestDatabase, uniqueDatabaseUrl } from '../helpers/db.ts';
import { nodeArgsFor } from '../helpers/run-command.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const CLI = 'src/cli/main.ts';
// Run outside the repository so that a developer's .env cannot change what is tested.
const cwd = mkdtempSync(join(tmpdir(), 'migrate-cli-'));
const PASSWORD = 'Pw-0f-the-op3rator';

const created: string[] = [];

function run(databaseUrl: string, args: string[] = ['--create'], command = 'db:migrate') {
  const env = { PATH: process.env.PATH, HOME: process.env.HOME, DATABASE_URL: databaseUrl, LOG_LEVEL: 'info' };
  const result = spawnSync(process.execPath, [...nodeArgsFor(CLI), command, ...args], {
    cwd,
    env,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr, output: result.stdout + result.stderr };
}

afterAll(async () => {
  rmSync(cwd, { recursive: true, force: true });
  for (const name of created) await dropTestDatabase(name);
});

describe('db:migrate', () => {
  it('applies the migrations, then reports the database up to date, never printing the password', () => {
    const { name } = uniqueDatabaseUrl('cli');
    created.push(name);
    // The test server trusts local connections, so the password is sent but not needed.
    const url = `postgresql://postgres:${PASSWORD}@127.0.0.1:5432/${name}`;
    const first = run(url);
    expect(first.code).toBe(0);
    const all = readdirSync(join(root, 'prisma/migrations'), { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name)
      .sort();
    expect(first.stdout).toContain(`Applied ${all.length} migration(s):\n  ${all.join('\n  ')}`);
    const second = run(url);
    expect(second.code).toBe(0);
    expect(second.stdout).toContain('up to date');
    expect(first.output + second.output).not.toContain(PASSWORD);
  });

  it('refuses a database that does not exist unless --create is given, and so do sync and start', async () => {
    const { name } = uniqueDatabaseUrl('cli');
    created.push(name);
    const url = `postgresql://postgres:${PASSWORD}@127.0.0.1:5432/${name}`;
    const refusals = [run(url, []), run(url, ['--source', 'all'], 'sync'), run(url, [], 'start')];
    for (const refused of refusals) {
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain(`database ${name} does not exist`);
      expect(refused.stderr).toContain('check DATABASE_URL');
      expect(refused.output).not.toContain(PASSWORD);
    }
    const admin = new pg.Client({ connectionString: 'postgresql://postgres@127.0.0.1:5432/postgres' });
    await admin.connect();
    try {
      const { rows } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
      expect(rows).toHaveLength(0);
    } finally {
      await admin.end();
    }
    expect(run(url).code).toBe(0);
  });

  it('answers an unknown argument with exit code 2 and one line pointing at the right one', () => {
    const result = run('postgresql://postgres@127.0.0.1:5432/postgres', ['--crate']);
    expect(result.code).toBe(2);
    expect(result.stderr.trim()).toBe("error: unknown option '--crate' (did you mean --create?)");
  });

  it('fails with exit code 1 and a message without the password when the server cannot be reached', () => {
    const result = run(`postgresql://postgres:${PASSWORD}@127.0.0.1:1/unreachable`);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/Migration failed: Cannot connect to postgres@127\.0\.0\.1:1\/unreachable/);
    expect(result.output).not.toContain(PASSWORD);
  });

  it('reports an invalid configuration by variable name, without its value', () => {
    const result = run(`mysql://root:${PASSWORD}@127.0.0.1/db`);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('DATABASE_URL');
    expect(result.output).not.toContain(PASSWORD);
  });
});
