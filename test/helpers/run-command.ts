/**
 * Runs a command of this repository as an operator would — a separate Node process through tsx, with only the
 * environment given (plus PATH and HOME), outside the repository so that a developer's .env cannot change what
 * is tested — and collects what it printed.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const REPOSITORY = fileURLToPath(new URL('../..', import.meta.url));
/** The operator's program, compiled into dist/src/cli/main.js by scripts/build.mjs. */
const PROGRAM = 'src/cli/main.ts';
const tsxLoader = pathToFileURL(join(REPOSITORY, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;

/**
 * Node's arguments for a command of this repository: the program (`src/cli/main.ts`) runs compiled, from dist/ (built
 * once before the tests by test/global-setup.ts), as `npm start` and the image run it; anything else (the fakes' CLI,
 * a test's own script) through tsx, as its npm script runs it.
 */
export function nodeArgsFor(script: string): string[] {
  if (script === PROGRAM) return [join(REPOSITORY, 'dist', 'src', 'cli', 'main.js')];
  return ['--import', tsxLoader, join(REPOSITORY, script)];
}
let scratch: string | undefined;

export interface CommandOutcome {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Wall time from spawn to exit. */
  ms: number;
}

export interface RunCommandOptions {
  /** Killed with SIGKILL after this long. @default 50_000 */
  timeoutMs?: number;
  /** Working directory. @default a temporary folder of its own, shared by the calls of one test file */
  cwd?: string;
}

/** `script` is relative to the repository (`src/cli/main.ts`); undefined values in `env` are left out. */
export function runCommand(
  script: string,
  args: string[],
  env: Record<string, string | undefined>,
  options: RunCommandOptions = {},
): Promise<CommandOutcome> {
  const defined = Object.fromEntries(
    Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined),
  );
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeArgsFor(script), ...args], {
      cwd: options.cwd ?? (scratch ??= mkdtempSync(join(tmpdir(), 'voucher-sync-command-'))),
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...defined },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += String(chunk)));
    child.stderr.on('data', (chunk: Buffer) => (stderr += String(chunk)));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 50_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
}
