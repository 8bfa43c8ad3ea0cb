// Whether dist/ (`npm run build`) is current, for bin/voucher-sync.mjs and the benchmark that times it.
//
// Current means: dist/build.json exists (the build writes it last, so a build cut short leaves none) and no input of
// the build changed since that build began — every file and folder under src/ and jobs/, prisma/migrations/,
// package.json and the tsconfig files is older than its `startedAtMs` (a deleted file changes its folder's time).
// Looking costs a few milliseconds.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const INPUTS = ['src', 'jobs', 'prisma/migrations', 'package.json', 'tsconfig.json', 'tsconfig.build.json'];

/** The start of the build dist/ holds, or null when there is none (never built, or a build cut short). */
function builtAt(root) {
  try {
    const { startedAtMs } = JSON.parse(readFileSync(join(root, 'dist', 'build.json'), 'utf8'));
    return typeof startedAtMs === 'number' ? startedAtMs : null;
  } catch {
    return null;
  }
}

/** The newest modification time among the build's inputs. */
function newestInput(root) {
  let newest = 0;
  for (const input of INPUTS) {
    const path = join(root, input);
    if (!existsSync(path)) continue;
    const stat = statSync(path);
    newest = Math.max(newest, stat.mtimeMs);
    if (!stat.isDirectory()) continue;
    for (const entry of readdirSync(path, { recursive: true }))
      newest = Math.max(newest, statSync(join(path, entry)).mtimeMs);
  }
  return newest;
}

/** True when `root`/dist is a complete build of the files under `root` as they are now. */
export function isBuildCurrent(root) {
  const built = builtAt(root);
  return built !== null && newestInput(root) < built;
}
