/**
 * bin/voucher-sync.mjs (`npx voucher-sync`, the `npm run` aliases) chooses between the compiled build and the
 * TypeScript sources. Run here in a copy of the launcher beside a stand-in tree, whose files' times the test sets:
 * the compiled one only while no input of the build is newer than the build's start, the sources otherwise, and
 * either way under the heap limit of its shebang.
 */
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ROOT } from './deploy-files.ts';

const BUILT_AT = Date.parse('2026-12-01T12:00:00Z');
/** An entry point that says which it is and the heap limit it runs under (MB). */
const entry = (kind: string) =>
  `import { getHeapStatistics } from 'node:v8';\nconsole.log('${kind}', Math.round(getHeapStatistics().heap_size_limit / 2 ** 20));\n`;
/** The heap limit Node gives a process started with the launcher's flag (`npm start`'s). */
const limitMb = () => {
  const flag = /--max-old-space-size=\d+/.exec(readFileSync(join(ROOT, 'bin', 'voucher-sync.mjs'), 'utf8'))![0];
  const out = execFileSync(process.execPath, [flag, '-p', 'require("node:v8").getHeapStatistics().heap_size_limit']);
  return Math.round(Number(String(out)) / 2 ** 20);
};

let tree: string;

function file(path: string, text: string, mtimeMs = BUILT_AT - 60_000): void {
  const at = join(tree, path);
  mkdirSync(dirname(at), { recursive: true });
  writeFileSync(at, text);
  utimesSync(at, mtimeMs / 1000, mtimeMs / 1000);
}

/** Runs the launcher as a shell would (its shebang); what the chosen entry point printed. */
function launch(): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(join(tree, 'bin', 'voucher-sync.mjs'), ['--help'], {
      cwd: tree,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += String(chunk)));
    child.stderr.on('data', (chunk: Buffer) => (err += String(chunk)));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`exit ${code}: ${err}`))));
  });
}

beforeEach(() => {
  tree = mkdtempSync(join(tmpdir(), 'voucher-sync-launcher-'));
  mkdirSync(join(tree, 'bin'));
  for (const name of ['voucher-sync.mjs', 'build-state.mjs']) cpSync(join(ROOT, 'bin', name), join(tree, 'bin', name));
  symlinkSync(join(ROOT, 'node_modules'), join(tree, 'node_modules'));
  file('package.json', '{"type":"module"}');
  file('tsconfig.json', '{}');
  file('src/cli/main.ts', entry('sources'));
  file('jobs/worker.ts', 'export {};');
  file('prisma/migrations/0001_init/migration.sql', 'SELECT 1;');
  file('dist/src/cli/main.js', entry('compiled'));
  file('dist/build.json', JSON.stringify({ startedAtMs: BUILT_AT }));
  // Folders get the time of their last change too: a deleted file shows only there.
  for (const dir of ['src/cli', 'src', 'jobs', 'prisma/migrations/0001_init', 'prisma/migrations'])
    utimesSync(join(tree, dir), (BUILT_AT - 60_000) / 1000, (BUILT_AT - 60_000) / 1000);
});

afterEach(() => rmSync(tree, { recursive: true, force: true }));

describe('bin/voucher-sync.mjs', () => {
  it('runs the compiled build while nothing changed since it began, under the heap limit of npm start', async () => {
    expect(await launch()).toBe(`compiled ${limitMb()}`);
  });

  it.each([
    ['a source file saved after the build began', () => file('src/cli/main.ts', entry('sources'), BUILT_AT + 1)],
    ['a migration added', () => file('prisma/migrations/0002_more/migration.sql', 'SELECT 2;', BUILT_AT + 1)],
    ['package.json changed', () => file('package.json', '{"type":"module"}', BUILT_AT + 1)],
    ['a module deleted', () => rmSync(join(tree, 'jobs', 'worker.ts'))],
    ['no build at all', () => rmSync(join(tree, 'dist'), { recursive: true })],
    ['a build cut short (no dist/build.json)', () => rmSync(join(tree, 'dist', 'build.json'))],
  ])('runs the TypeScript sources through tsx after %s', async (_label, change) => {
    change();
    expect(await launch()).toBe(`sources ${limitMb()}`);
  });
});
