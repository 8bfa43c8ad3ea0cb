/**
 * The Docker image, read as Docker would build it (no engine runs here): a build stage with every dependency that
 * compiles, a runtime stage with the production dependencies and dist/ only, and a dist/ that needs nothing else —
 * every package it imports is in `dependencies`. Every Node process the project starts has `npm start`'s heap limit.
 * scripts/check-image.mjs reproduces the runtime stage for real (an `npm ci --omit=dev` from the registry).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dockerfile, execForm, npmStartCommand, read, ROOT, type Instruction } from './deploy-files.ts';

/** The Dockerfile's stages by name, each its instructions after FROM. */
function stages(): Map<string, Instruction[]> {
  const byName = new Map<string, Instruction[]>();
  let current: Instruction[] | undefined;
  for (const instruction of dockerfile()) {
    if (instruction.keyword === 'FROM') {
      const name = /\sAS\s+(\S+)$/i.exec(instruction.args)?.[1];
      if (!name) throw new Error(`every stage needs a name: FROM ${instruction.args}`);
      byName.set(name, (current = []));
    } else current?.push(instruction);
  }
  return byName;
}

const runs = (stage: Instruction[]) => stage.filter((i) => i.keyword === 'RUN').map((i) => i.args);
const packageJson = JSON.parse(read('package.json')) as {
  scripts: Record<string, string>;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

/** The package a bare import names (`@prisma/client/runtime/x.mjs` → `@prisma/client`), or null for a relative one. */
function packageOf(specifier: string): string | null {
  if (specifier.startsWith('.') || specifier.startsWith('/') || specifier.startsWith('node:')) return null;
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

/** What scripts/build.mjs put in the bundle, and what the bundle imports from outside itself. */
function bundleContents(): { packages: string[]; externals: string[] } {
  return JSON.parse(read('dist/bundle.json')) as { packages: string[]; externals: string[] };
}

/** The packages `npm ci --omit=dev` installs: every package of the lockfile not marked as a development one. */
function productionPackages(): Set<string> {
  const lock = JSON.parse(read('package-lock.json')) as { packages: Record<string, { dev?: boolean }> };
  return new Set(
    Object.entries(lock.packages)
      .filter(([path, entry]) => path.startsWith('node_modules/') && entry.dev !== true)
      .map(([path]) => path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length)),
  );
}

/**
 * Imported by bundled packages only if installed, and installed by no one here: each package goes on without it.
 * A new external that is neither installed nor listed here fails the test below.
 */
const OPTIONAL_ELSEWHERE = new Map([
  ['@valkey/valkey-glide', "BullMQ's optional Valkey client"],
  ['pg-native', "pg's optional native binding"],
  ['supports-color', "debug's optional colour detection"],
]);

/** Packages the sources find by path at run time (createRequire(import.meta.url).resolve('uplot/…')). */
function resolvedBySources(): string[] {
  const found: string[] = [];
  for (const folder of ['src', 'jobs'])
    for (const file of readdirSync(join(ROOT, folder), { recursive: true }) as string[]) {
      if (!file.endsWith('.ts') || file.includes('generated')) continue;
      const text = readFileSync(join(ROOT, folder, file), 'utf8');
      for (const match of text.matchAll(/\.resolve\(\s*["']([^"'\s]+)["']\s*\)/g)) found.push(packageOf(match[1]!)!);
    }
  return found;
}

describe('the Docker image', () => {
  const byName = stages();
  const build = byName.get('build');
  const runtime = [...byName.values()].at(-1)!;

  it('compiles in a build stage that has the development dependencies', () => {
    expect(build, 'a stage named build').toBeDefined();
    expect(runs(build!)).toContainEqual(expect.stringMatching(/^npm ci\b(?!.*--omit=dev)/));
    expect(runs(build!)).toContain('npm run build');
  });

  it('runs from a last stage with the production dependencies and the compiled dist/ only', () => {
    expect(runs(runtime)).toContainEqual(expect.stringMatching(/^npm ci --omit=dev\b/));
    expect(runs(runtime).join('\n')).not.toMatch(/npm (run|install|i)\b/);
    const copies = runtime.filter((i) => i.keyword === 'COPY').map((i) => i.args.split(/\s+/));
    // From the build stage: dist/ and nothing else (no sources, no node_modules with the dev dependencies).
    expect(copies.filter((c) => c[0] === '--from=build')).toEqual([['--from=build', '/app/dist', './dist']]);
    // From the context: only what `npm ci` reads.
    expect(copies.filter((c) => c[0] !== '--from=build')).toEqual([['package.json', 'package-lock.json', './']]);
    expect(execForm(runtime.findLast((i) => i.keyword === 'CMD')!.args)).toEqual(npmStartCommand());
  });

  it('needs at run time only what the production install provides, and bundles no development tool', () => {
    const { packages, externals } = bundleContents();
    expect(packages, 'dist/ is built (test/global-setup.ts)').toContain('bullmq');
    const builtins = new Set(builtinModules);
    const installed = productionPackages();
    const missing = [...externals.map((path) => packageOf(path) ?? path), ...resolvedBySources()]
      .filter((name) => !builtins.has(name.replace(/^node:/, '')) && !name.startsWith('node:'))
      .filter((name) => !installed.has(name) && !OPTIONAL_ELSEWHERE.has(name));
    expect(missing).toEqual([]);
    expect(resolvedBySources(), 'the status page reads uPlot from its package').toContain('uplot');
    // What the TypeScript sources need only on a developer's machine: the compiled build holds and loads none of it.
    for (const name of ['tsx', 'typescript', 'prisma', 'esbuild']) {
      expect(packages, name).not.toContain(name);
      expect(externals.map(packageOf), name).not.toContain(name);
    }
  });

  it('leaves the development tools out of the runtime stage: tsx, typescript and the Prisma CLI are dev dependencies', () => {
    for (const name of ['tsx', 'typescript', 'prisma']) {
      expect(packageJson.dependencies, name).not.toHaveProperty(name);
      expect(packageJson.devDependencies, name).toHaveProperty(name);
    }
  });
});

describe('every Node process the project starts has the heap limit of npm start', () => {
  const limit = npmStartCommand().find((arg) => arg.startsWith('--max-old-space-size='))!;

  it('npm start has one', () => {
    expect(limit).toMatch(/^--max-old-space-size=\d+$/);
  });

  it('bin/voucher-sync.mjs (npx voucher-sync) and every npm script that runs it', () => {
    expect(read('bin/voucher-sync.mjs').split('\n')[0]).toBe(`#!/usr/bin/env -S node ${limit}`);
    const commands = Object.entries(packageJson.scripts).flatMap(([name, script]) =>
      script
        .split('&&')
        .map((step) => step.trim())
        .filter((step) => /\b(bin\/voucher-sync\.mjs|dist\/src\/cli\/main\.js)\b/.test(step))
        .map((step) => [name, step] as const),
    );
    expect(commands.map(([name]) => name)).toEqual(expect.arrayContaining(['start', 'sync', 'demo', 'status']));
    for (const [name, step] of commands) expect(step.split(/\s+/).slice(0, 2), name).toEqual(['node', limit]);
  });
});
