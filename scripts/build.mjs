/**
 * `npm run build`: compiles src/ and jobs/ to dist/, what `npm start` and the Docker image run, and copies beside it
 * what the code reads from its own folder at run time (the status page's files, the migrations, package.json).
 * Emit only: the type check is `npm run typecheck` (CI runs it), so a build takes seconds. dist/ is made afresh each
 * time, so no module removed from src/ lingers in it. dist/build.json, written last, says when the build began:
 * bin/voucher-sync.mjs runs dist/ only while no input is newer than that (else the sources, through tsx).
 */
import { execFileSync } from 'node:child_process';
import { cpSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const at = (path) => `${root}${path}`;
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');

// Taken before anything is read: a file saved while the build runs counts as newer than the build.
const startedAtMs = Date.now();
rmSync(at('dist'), { recursive: true, force: true });
execFileSync(process.execPath, [tsc, '-p', at('tsconfig.build.json'), '--noCheck'], { stdio: 'inherit' });
cpSync(at('src/server/page'), at('dist/src/server/page'), { recursive: true });
cpSync(at('prisma/migrations'), at('dist/prisma/migrations'), { recursive: true });
cpSync(at('package.json'), at('dist/package.json'));
writeFileSync(at('dist/build.json'), `${JSON.stringify({ startedAtMs })}\n`);
