import { randomUUID } from 'node:crypto';
import { afterEach, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { REDIS_URL } from '../helpers/sync-harness.ts';
import { runCommand } from '../helpers/run-command.ts';

let db: TestDatabase | undefined;
afterEach(async () => {
  await db?.drop();
  db = undefined;
});

it('a start that fails after connecting exits 1 with the reason, rather than hanging with Redis open', async () => {
  db = await createTestDatabase();
  // Migrated, and then broken as a restart of PostgreSQL mid-start breaks it: the first query of the service fails.
  await db.prisma.$executeRawUnsafe('DROP TABLE installation');
  const outcome = await runCommand(
    'src/cli/main.ts',
    ['start', '--role', 'scheduler'],
    { DATABASE_URL: db.url, REDIS_URL, QUEUE_PREFIX: `vs-test-${randomUUID().slice(0, 8)}`, LOG_FORMAT: 'json' },
    { timeoutMs: 30_000 },
  );
  expect(outcome.code).toBe(1);
  expect(outcome.stderr).toContain('installation');
});
