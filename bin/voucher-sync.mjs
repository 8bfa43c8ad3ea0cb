#!/usr/bin/env -S node --max-old-space-size=192
// `npx voucher-sync <command>` and the `npm run` aliases. Runs the compiled build (dist/, `npm run build`) when it is
// current (./build-state.mjs says what that means), else the TypeScript sources through tsx: a clean clone needs
// only `npm ci`, an edited one never runs stale code, and a built one starts a second sooner (tsx compiles every
// module as it loads it).
//
// The heap limit of the shebang is `npm start`'s (the package.json scripts pass it to `node` themselves): a sync runs
// a worker in this process, and the limit keeps it under 300 MB however large the backfill.
import { URL, fileURLToPath } from 'node:url';
import { isBuildCurrent } from './build-state.mjs';

if (isBuildCurrent(fileURLToPath(new URL('..', import.meta.url)))) {
  await import('../dist/src/cli/main.js');
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli/main.ts');
}
