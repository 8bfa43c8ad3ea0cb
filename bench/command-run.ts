/**
 * A command of the product run as an operator runs it: the npm script's own command line (its Node flags included,
 * read from package.json), or `npm run` itself, with the bench's environment; its wall time from spawn to exit and
 * its peak resident set (VmHWM, read until it exits).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isBuildCurrent } from '../bin/build-state.mjs';
import { REPO_ROOT, peakRss } from './infra.ts';

export interface CommandResult {
  code: number | null;
  stdout: string;
  stderr: string;
  wallMs: number;
  /** Of the Node process itself (null through npm, whose child it is not). */
  peakRss: number | null;
}

/** The last step of an npm script (`node --max-old-space-size=192 bin/voucher-sync.mjs sync`), split in words. */
export function scriptCommand(name: string): string[] {
  const { scripts } = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
    scripts: Record<string, string>;
  };
  const script = scripts[name];
  if (!script) throw new Error(`package.json has no script "${name}"`);
  return script.split('&&').at(-1)!.trim().split(/\s+/);
}

/** Whether bin/voucher-sync.mjs runs the compiled build now (else tsx): the figures depend on it. */
export const runsCompiled = () => isBuildCurrent(REPO_ROOT);

/**
 * `via: 'node'` runs the script's command line directly (its peak RSS is measured); `via: 'npm'` runs
 * `npm run --silent <script> -- args`, what the operator types, npm's own start-up included.
 */
export function runScript(
  name: string,
  args: string[],
  env: Record<string, string>,
  options: { via: 'node' | 'npm'; timeoutMs: number },
): Promise<CommandResult> {
  const [program, ...rest] = scriptCommand(name);
  const [file, argv] =
    options.via === 'npm'
      ? ['npm', ['run', '--silent', name, '--', ...args]]
      : [program === 'node' ? process.execPath : program!, [...rest, ...args]];
  const started = performance.now();
  const child = spawn(file, argv, {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let peak: number | null = null;
  child.stdout.on('data', (chunk: Buffer) => (stdout += String(chunk)));
  child.stderr.on('data', (chunk: Buffer) => (stderr += String(chunk)));
  // VmHWM only grows: the last reading before the exit is the peak, give or take the last 50 ms.
  const sampler =
    options.via === 'node'
      ? setInterval(() => {
          const now = child.pid === undefined ? null : peakRss(child.pid);
          if (now !== null) peak = Math.max(peak ?? 0, now);
        }, 50)
      : undefined;
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      clearInterval(sampler);
      clearTimeout(timer);
      resolve({ code, stdout, stderr, wallMs: performance.now() - started, peakRss: peak });
    });
  });
}

export const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)] ?? NaN;
};
