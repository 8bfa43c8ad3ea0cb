/**
 * tsx bench/runtime-image.ts — the runtime stage of the Dockerfile reproduced by hand, for a machine without Docker:
 * package.json, package-lock.json and a fresh dist/ in a temporary folder, `npm ci --omit=dev --ignore-scripts` there
 * (from the registry: a minute or so, hence not a test), then `--help` and a sync of Cin7 against the fake, run
 * with the image's command line. Says what the folder holds and exits 1 if any step fails. Not part of `npm run bench`.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFake } from './fake-host.ts';
import { REPO_ROOT, cleanupAll, createDatabase, createQueuePrefix } from './infra.ts';
import { serviceEnv } from './service-run.ts';

const folder = mkdtempSync(join(tmpdir(), 'voucher-sync-image-'));
const step = (what: string) => console.log(`runtime image: ${what}`);

/** The image's CMD up to the script (`node --max-old-space-size=192 dist/src/cli/main.js`), then `args`. */
function imageCommand(args: string[]): string[] {
  const cmd = /^CMD\s+(\[.*\])\s*$/m.exec(readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8'))?.[1];
  if (!cmd) throw new Error('the Dockerfile has no CMD in exec form');
  const words = JSON.parse(cmd) as string[];
  return [...words.slice(1, words.indexOf('dist/src/cli/main.js') + 1), ...args];
}

function run(args: string[], env: Record<string, string> = {}): string {
  const result = spawnSync(process.execPath, imageCommand(args), {
    cwd: folder,
    env: { PATH: process.env.PATH ?? '', HOME: folder, ...env },
    encoding: 'utf8',
    timeout: 120_000,
  });
  if (result.status !== 0) throw new Error(`${args.join(' ')} exited ${result.status}:\n${result.stderr}`);
  return result.stdout;
}

try {
  step('npm run build');
  execFileSync(process.execPath, [join(REPO_ROOT, 'scripts', 'build.mjs')], { stdio: 'inherit' });
  for (const file of ['package.json', 'package-lock.json', 'dist'])
    cpSync(join(REPO_ROOT, file), join(folder, file), { recursive: true });
  step(`npm ci --omit=dev --ignore-scripts in ${folder}`);
  const started = performance.now();
  execFileSync('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund'], {
    cwd: folder,
    stdio: 'inherit',
  });
  step(`installed in ${Math.round((performance.now() - started) / 1000)} s`);

  const { devDependencies } = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
    devDependencies: Record<string, string>;
  };
  // A development dependency may still arrive as a dependency's own (TypeScript is a peer of Prisma's client).
  const present = Object.keys(devDependencies).filter((name) => existsSync(join(folder, 'node_modules', name)));
  step(`development dependencies present only as production ones' dependencies: ${present.join(', ') || 'none'}`);
  for (const name of ['vitest', 'eslint', 'prettier', 'playwright-core'])
    if (present.includes(name)) throw new Error(`${name}, a development tool, was installed`);

  if (!run(['--help']).includes('Usage: voucher-sync')) throw new Error('--help printed no usage');
  step('--help works');

  const fake = await startFake({ source: 'cin7', count: 2_000, latencyMs: 0, rateLimits: null, seed: 3 });
  const database = await createDatabase('bench_image');
  const { prefix } = createQueuePrefix();
  const env = serviceEnv('cin7', database.url, prefix, fake, { LOG_LEVEL: 'warn', CIN7_RATE_LIMIT: '1000/s' });
  const summary = run(['sync', '--source', 'cin7'], env);
  if (!/cin7\s+ok\s+fetched \d+, inserted 2000\b/.test(summary)) throw new Error(`unexpected summary:\n${summary}`);
  step(`sync of the fake Cin7 works: ${summary.trim()}`);
  step('OK');
} catch (error) {
  console.error(`runtime image: FAILED: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
} finally {
  await cleanupAll();
  rmSync(folder, { recursive: true, force: true });
}
