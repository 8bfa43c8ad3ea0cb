/**
 * Two databases on one Redis with the same QUEUE_PREFIX: the second is refused with one line, before it can take
 * or queue a run of the first; processes of one database share their prefix freely.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { ConfigError } from '../../src/errors.ts';
import { createLogger } from '../../src/logger.ts';
import { startService } from '../../jobs/service.ts';
import { bindingKey } from '../../jobs/queue-binding.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { runCommand } from '../helpers/run-command.ts';
import { createHarness, type Harness } from '../helpers/sync-harness.ts';

describe('one QUEUE_PREFIX, two databases', () => {
  let h: Harness;
  let other: TestDatabase;
  const logger = createLogger('silent');

  beforeAll(async () => {
    h = await createHarness({ careCloud: { count: 20 }, cin7: { count: 20 } });
    other = await createTestDatabase({ prefix: 'binding' });
  });
  afterAll(async () => {
    await other?.drop();
    await h?.close();
  });

  it('refuses the second database with one line, and lets every process of the first share the prefix', async () => {
    const first = await startService(h.config, logger, { schedulers: false });
    const sameDatabase = await startService(h.config, logger, { schedulers: false });
    try {
      const otherConfig = loadConfig({ ...h.env, DATABASE_URL: other.url });
      const refused = await startService(otherConfig, logger, { schedulers: false }).then(
        async (service) => {
          await service.stop();
          return null;
        },
        (error: unknown) => error,
      );
      expect(refused).toBeInstanceOf(ConfigError);
      const message = (refused as Error).message;
      expect(message).toContain(`QUEUE_PREFIX "${h.prefix}"`);
      expect(message).toContain(h.databaseUrl.split('/').pop());
      expect(message.split('\n')).toHaveLength(1);

      // `npm run sync` against the other database: refused before it queues anything, and it never reports a run.
      const before = await h.db.syncRun.count();
      const run = await runCommand('src/cli/main.ts', ['sync', '--source', 'all'], {
        ...h.env,
        DATABASE_URL: other.url,
      });
      expect(run.code).toBe(1);
      expect(run.stderr.trim().split('\n')).toHaveLength(1);
      expect(run.stderr).toContain(`QUEUE_PREFIX "${h.prefix}"`);
      expect(run.stdout).not.toMatch(/fetched/);
      expect(await other.prisma.syncRun.count()).toBe(0);
      expect(await h.db.syncRun.count()).toBe(before);
    } finally {
      await sameDatabase.stop();
      await first.stop();
    }
  });

  it('lets another database take the prefix once the first one has stopped, or its processes died', async () => {
    const otherConfig = loadConfig({ ...h.env, DATABASE_URL: other.url });
    const first = await startService(h.config, logger, { schedulers: false });
    await first.stop();
    const second = await startService(otherConfig, logger, { schedulers: false });
    await second.stop();
    expect(JSON.parse((await h.redis.get(bindingKey(h.prefix)))!)).toMatchObject({
      described: expect.stringContaining(other.name),
    });

    // A process that died holds its lease until it lapses: refused while it lasts, free after.
    const held = await startService(h.config, logger, { schedulers: false });
    await h.redis.zadd(`${bindingKey(h.prefix)}:live`, Date.now() + 60_000, 'a-process-that-died');
    await held.stop();
    await expect(startService(otherConfig, logger, { schedulers: false })).rejects.toThrow(
      /in use by another database/,
    );
    await h.redis.zadd(`${bindingKey(h.prefix)}:live`, Date.now() - 1, 'a-process-that-died');
    const after = await startService(otherConfig, logger, { schedulers: false });
    await after.stop();
  });
});
