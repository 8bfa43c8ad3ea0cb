/**
 * `voucher-sync reset` on a terminal asks before it forgets anything: "n" (or anything but y/yes) keeps the state,
 * "y" resets. The terminal is util-linux `script`'s pseudo-terminal; without `script` the test is skipped.
 */
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { REPOSITORY } from '../helpers/run-command.ts';
import { createHarness, type Harness } from '../helpers/sync-harness.ts';

const hasScript = spawnSync('script', ['--version']).status === 0;

let h: Harness | undefined;

afterEach(async () => {
  await h?.close();
  h = undefined;
});

/** Runs `reset --source cin7` on a pseudo-terminal, answers `answer` to its question, returns its exit code and output. */
async function resetOnTerminal(env: Record<string, string>, answer: string) {
  const loader = pathToFileURL(join(REPOSITORY, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;
  const command = [
    process.execPath,
    '--import',
    loader,
    join(REPOSITORY, 'src/cli/main.ts'),
    'reset',
    '--source',
    'cin7',
  ]
    .map((part) => `'${part}'`)
    .join(' ');
  const child = spawn('script', ['-qec', command, '/dev/null'], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', TERM: 'dumb', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => {
    output += String(chunk);
    if (output.includes('[y/N]') && !child.stdin.writableEnded) child.stdin.end(`${answer}\n`);
  });
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, output };
}

describe.skipIf(!hasScript)('voucher-sync reset on a terminal', () => {
  it('asks, keeps everything on "n", resets on "y"', async () => {
    h = await createHarness();
    const harness = h;
    await harness.sync('cin7');
    const before = await harness.db.syncState.findFirstOrThrow({ where: { source: 'cin7' } });
    const env = { ...harness.env, LOG_LEVEL: 'warn' };

    const declined = await resetOnTerminal(env, 'n');
    expect(declined.output).toContain('Forget the watermark and saved progress of cin7?');
    expect(declined.output).toContain('not reset: cin7 keeps its watermark and saved progress');
    expect(declined.code).toBe(1);
    expect(await harness.db.syncState.findFirstOrThrow({ where: { source: 'cin7' } })).toEqual(before);

    const accepted = await resetOnTerminal(env, 'y');
    expect(accepted.code, accepted.output).toBe(0);
    expect(accepted.output).toContain('the next run of cin7 is a first backfill');
    expect((await harness.db.syncState.findFirstOrThrow({ where: { source: 'cin7' } })).watermark).toBeNull();
  }, 60_000);
});
