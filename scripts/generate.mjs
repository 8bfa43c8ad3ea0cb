// Runs `prisma generate` on machines that cannot download Prisma's schema engine. Generation never runs
// the engine, but the CLI insists that the binary exists: any existing file satisfies it. The datasource
// URL is not used by generation either; a placeholder keeps prisma.config.ts's env() from throwing.
import { spawnSync } from 'node:child_process';

const env = {
  ...process.env,
  PRISMA_SCHEMA_ENGINE_BINARY: process.env.PRISMA_SCHEMA_ENGINE_BINARY ?? process.execPath,
  DATABASE_URL: process.env.DATABASE_URL ?? 'postgresql://localhost/unused',
  PRISMA_HIDE_UPDATE_MESSAGE: '1',
};
const result = spawnSync('npx', ['--no-install', 'prisma', 'generate'], { stdio: 'inherit', env });
process.exit(result.status ?? 1);
