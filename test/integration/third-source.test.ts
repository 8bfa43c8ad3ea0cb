/**
 * The one-folder claim, proved: a source that exists only in test/third-source/ (a tiny fake API, its settings,
 * client and stream), registered here as its line in src/sources/index.ts would, runs through the config, the
 * engine and the demo wiring with nothing else changed — no migration either.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { ConfigError } from '../../src/errors.ts';
import { startDemoFakes } from '../../src/fake/start-fakes.ts';
import { createLogger } from '../../src/logger.ts';
import { registerSource, sourceNames } from '../../src/sources/index.ts';
import { runOnce } from '../../jobs/run-once.ts';
import { startService } from '../../jobs/service.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { createHarness, REDIS_URL } from '../helpers/sync-harness.ts';
import { tiny, type TinyConfig } from '../third-source/index.ts';
import type { TinyApi } from '../third-source/fake-api.ts';

registerSource(tiny);

const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

describe('a third source: one folder and one registry line', () => {
  it('has its settings assembled with the others: defaults, credentials, secrets', () => {
    const config = loadConfig({ TINY_BASE_URL: 'http://127.0.0.1:1/', TINY_TOKEN: 'tiny-s3cret' });
    expect(config.sources.tiny).toMatchObject({ baseUrl: 'http://127.0.0.1:1', pageSize: 10 });
    expect((config.sources.tiny as TinyConfig).token.reveal()).toBe('tiny-s3cret');
    expect(JSON.stringify(config)).not.toContain('tiny-s3cret');
    expect(loadConfig({}).sources.tiny).toBeNull();
    const problem = (env: Record<string, string>) => {
      try {
        loadConfig(env);
      } catch (error) {
        expect(error).toBeInstanceOf(ConfigError);
        return (error as Error).message;
      }
      return '';
    };
    expect(problem({ TINY_TOKEN: 'tiny-s3cret' })).toBe('TINY_BASE_URL must be set to sync tiny (TINY_TOKEN is set)');
    expect(problem({ TINY_PAGE_SIZE: '500' })).toBe('TINY_PAGE_SIZE must be a whole number from 1 to 100 (got "500")');
    expect(sourceNames).toEqual(['carecloud', 'cin7', 'tiny']);
  });

  it('syncs through the engine from its fake: rows in vouchers, a run in sync_runs', async () => {
    const h = await createHarness();
    cleanups.push(() => h.close());
    const fake = h.fakes.tiny as TinyApi;
    const result = await h.sync('tiny', 'full');
    expect(result.counters).toMatchObject({ fetched: 25, inserted: 25 });
    const rows = await h.vouchers('tiny');
    expect(rows.map((r) => r.sourceId)).toEqual(fake.vouchers.map((v) => v.id));
    expect(rows[0]).toMatchObject({ code: fake.vouchers[0]!.code, status: 'active', amount: expect.anything() });
    const runs = await h.db.syncRun.findMany({ where: { source: 'tiny' } });
    expect(runs).toMatchObject([{ stream: 'vouchers', mode: 'full', status: 'succeeded', fetched: 25, inserted: 25 }]);
    // The other sources are untouched by it.
    expect(await h.db.voucher.count({ where: { source: { not: 'tiny' } } })).toBe(0);
  });

  it('runs through the demo wiring: its fake starts beside the others and a run through the real queues stores it', async () => {
    const database = await createTestDatabase();
    cleanups.push(() => database.drop());
    const fakes = await startDemoFakes({ seed: 42 });
    cleanups.push(() => fakes.stop());
    expect(fakes.started.map((s) => s.name)).toEqual(['carecloud', 'cin7', 'tiny']);
    const prefix = `vs-test-${randomUUID().slice(0, 8)}`;
    cleanups.push(async () => {
      const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
    });
    const config = loadConfig({
      DATABASE_URL: database.url,
      REDIS_URL,
      QUEUE_PREFIX: prefix,
      LOG_LEVEL: 'silent',
      JOB_BACKOFF: '2s',
      ...fakes.env,
    });
    const service = await startService(config, createLogger('silent'), { schedulers: false });
    cleanups.push(() => service.stop());
    const outcomes = await runOnce(service, REDIS_URL, prefix, 'incremental', 'demo');
    expect(outcomes.map((o) => [o.source, o.ok])).toEqual([
      ['carecloud', true],
      ['cin7', true],
      ['tiny', true],
    ]);
    expect(await database.prisma.voucher.count({ where: { source: 'tiny' } })).toBe(12);
    expect(await database.prisma.syncRun.count({ where: { source: 'tiny', status: 'succeeded' } })).toBe(1);
  });
});
