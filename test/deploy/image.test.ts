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

/** Every module specifier of the compiled files under dist/ (imports, re-exports, import(), resolved paths). */
function distImports(): Map<string, string> {
  const found = new Map<string, string>();
  const dist = join(ROOT, 'dist');
  for (const file of readdirSync(dist, { recursive: true }) as string[]) {
    if (!/\.(m?js)$/.test(file)) continue;
    const text = readFileSync(join(dist, file), 'utf8');
    const statements = /^\s*(?:import|export)\s[^;]*?\bfrom\s*["']([^"'\s]+)["']|^\s*import\s*["']([^"'\s]+)["']/gm;
    // import('x'), and a file found through a package: createRequire(import.meta.url).resolve('x/file.js').
    const dynamic = /(?:\bimport|\brequire|\)\.resolve|\brequire\.resolve)\(\s*["']([^"'\s]+)["']\s*\)/g;
    for (const match of [...text.matchAll(statements), ...text.matchAll(dynamic)]) {
      const specifier = match[1] ?? match[2]!;
      if (!found.has(specifier)) found.set(specifier, file);
    }
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

  it('needs at run time only packages listed in dependencies: the compiled code imports nothing else', () => {
    const imports = distImports();
    expect(imports.size, 'dist/ is built (test/global-setup.ts)').toBeGreaterThan(50);
    const builtins = new Set(builtinModules);
    const missing = [...imports]
      .map(([specifier, file]) => [packageOf(specifier), file] as const)
      .filter(([name]) => name !== null && !builtins.has(name) && !(name in packageJson.dependencies))
      .map(([name, file]) => `${name} (dist/${file})`);
    expect(missing).toEqual([]);
    // What the TypeScript sources need only on a developer's machine: the compiled build loads none of it.
    for (const name of ['tsx', 'typescript', 'prisma'])
      expect([...imports.keys()].map(packageOf), name).not.toContain(name);
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
