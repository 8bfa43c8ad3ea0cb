/**
 * The folder of voucher-sync's package.json, where the files it reads at run time are found: the repository when it
 * runs from the sources, dist/ when it runs compiled (scripts/build.mjs copies package.json, the migrations, the status
 * page and Prisma's query compiler there). Found by walking up from this module rather than by a path relative to a
 * module's own folder: the compiled build is a bundle (scripts/build.mjs), in which every module has the bundle's
 * location.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const NAME = 'voucher-sync';

function findRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (nameAt(dir) === NAME) return dir;
    if (dirname(dir) === dir) throw new Error(`no package.json named ${NAME} above ${from}`);
  }
}

function nameAt(dir: string): string | null {
  try {
    return (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string }).name ?? null;
  } catch {
    return null;
  }
}

export const PACKAGE_ROOT = findRoot(dirname(fileURLToPath(import.meta.url)));

/** A path under the package's folder, given as its parts (`atPackageRoot('prisma', 'migrations')`). */
export const atPackageRoot = (...parts: string[]) => join(PACKAGE_ROOT, ...parts);
