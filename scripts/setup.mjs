// Makes `npm test` and `npm run demo` work on a fresh clone: installs dependencies from the lockfile when
// they are missing or older than it, and generates the Prisma client when it is missing or older than the
// schema. Uses only Node's standard library, because it runs before anything is installed.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';

const mtime = (path) => (existsSync(path) ? statSync(path).mtimeMs : 0);

function run(command, args) {
  const result = spawnSync(command, args, { stdio: 'inherit' });
  if (result.status !== 0) {
    console.error(`setup: "${command} ${args.join(' ')}" failed`);
    process.exit(result.status ?? 1);
  }
}

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 19)) {
  console.error(`setup: Node ${process.versions.node} is too old; voucher-sync needs Node 20.19 or newer.`);
  process.exit(1);
}

if (mtime('node_modules/.package-lock.json') < mtime('package-lock.json')) {
  console.log('setup: installing dependencies (npm ci)…');
  run('npm', ['ci', '--no-audit', '--no-fund']);
} else if (mtime('src/generated/prisma/client.ts') < mtime('prisma/schema.prisma')) {
  run('node', ['scripts/generate.mjs']);
}
