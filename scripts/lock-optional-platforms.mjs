// The npm registry reachable from our build machines does not serve the macOS, Windows and 32-bit ARM builds
// of msgpackr-extract (BullMQ's optional native msgpack accelerator), so `npm install` here leaves them out of
// package-lock.json — and `npm ci` then refuses the lockfile as out of sync with package.json. This records
// them the way npm does for optional packages of other platforms: npm skips them by os/cpu without fetching.
// Run after any `npm install` that rewrites package-lock.json.
import { readFileSync, writeFileSync } from 'node:fs';

const lock = JSON.parse(readFileSync('package-lock.json', 'utf8'));
const host = lock.packages['node_modules/msgpackr-extract'];
const platforms = {
  'darwin-arm64': ['darwin', 'arm64'],
  'darwin-x64': ['darwin', 'x64'],
  'linux-arm': ['linux', 'arm'],
  'linux-arm64': ['linux', 'arm64'],
  'linux-x64': ['linux', 'x64'],
  'win32-x64': ['win32', 'x64'],
};
let added = 0;
for (const [name, version] of Object.entries(host?.optionalDependencies ?? {})) {
  const key = `node_modules/${name}`;
  const suffix = name.split('msgpackr-extract-')[1];
  if (lock.packages[key] || !platforms[suffix]) continue;
  const [os, cpu] = platforms[suffix];
  lock.packages[key] = { version, cpu: [cpu], license: 'MIT', optional: true, os: [os] };
  added++;
}
lock.packages = Object.fromEntries(
  Object.entries(lock.packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a.localeCompare(b))),
);
writeFileSync('package-lock.json', `${JSON.stringify(lock, null, 2)}\n`);
console.log(`lock-optional-platforms: recorded ${added} optional platform package(s)`);
