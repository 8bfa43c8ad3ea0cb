/**
 * Everything an end-to-end test needs: a fresh database, both fake servers, a config pointing at them with
 * a unique queue prefix, and the real clients and streams. Call `close()` in afterEach/afterAll.
 */
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { loadConfig, type Config } from '../../src/config.ts';
import { createFakeCareCloud, type FakeCareCloud, type FakeCareCloudOptions } from '../../src/fake/carecloud.ts';
import { createFakeCin7, type FakeCin7, type FakeCin7Options } from '../../src/fake/cin7.ts';
import { createLogger, type Logger } from '../../src/logger.ts';
import { runSync } from '../../src/sync/run-sync.ts';
import type { Clock, SyncMode } from '../../src/types.ts';
import { createSourceRuntimes, type SourceRuntime } from '../../jobs/runtime.ts';
import { startHostileServer, type HostileServer } from '../hostile/hostile-server.ts';
import { createTestDatabase } from './db.ts';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

export interface HarnessOptions {
  careCloud?: FakeCareCloudOptions;
  cin7?: FakeCin7Options;
  /** Extra environment for loadConfig (limits, page sizes…). */
  env?: Record<string, string>;
  /** Put a hostile proxy (test/hostile/) in front of the fakes; switch its behaviour with `hostile.<source>.set()`. */
  hostile?: boolean;
}

export async function createHarness(options: HarnessOptions = {}) {
  const database = await createTestDatabase();
  const careCloud: FakeCareCloud = createFakeCareCloud({ seed: 7, count: 600, rateLimits: null, ...options.careCloud });
  const cin7: FakeCin7 = createFakeCin7({ seed: 7, count: 600, rateLimits: null, ...options.cin7 });
  const prefix = `vs-test-${randomUUID().slice(0, 8)}`;
  const careCloudUrl = await careCloud.start();
  const cin7Url = await cin7.start();
  const hostile: { carecloud: HostileServer; cin7: HostileServer } | null = options.hostile
    ? { carecloud: await startHostileServer(careCloudUrl), cin7: await startHostileServer(cin7Url) }
    : null;
  const env = {
    DATABASE_URL: database.url,
    REDIS_URL,
    QUEUE_PREFIX: prefix,
    LOG_LEVEL: 'debug',
    JOB_BACKOFF: '200ms',
    HTTP_MAX_INLINE_WAIT: '5s',
    HTTP_RETRY_BACKOFF: '100ms',
    CARECLOUD_BASE_URL: hostile?.carecloud.baseUrl ?? careCloudUrl,
    CARECLOUD_LOGIN: careCloud.credentials.login,
    CARECLOUD_PASSWORD: careCloud.credentials.password,
    CARECLOUD_APP_ID: careCloud.credentials.appId,
    CARECLOUD_TIMEZONE: careCloud.timezone,
    CARECLOUD_RATE_LIMIT: '1000/s',
    CARECLOUD_SLICE_PAGES: process.env.TEST_SLICE_PAGES ?? '20',
    CIN7_BASE_URL: hostile?.cin7.baseUrl ?? cin7Url,
    CIN7_USERNAME: cin7.credentials.username,
    CIN7_API_KEY: cin7.credentials.apiKey,
    CIN7_RATE_LIMIT: '1000/s',
    CIN7_DAILY_BUDGET: 'off',
    ...options.env,
  };
  const config: Config = loadConfig(env);
  const logLines: string[] = [];
  const logger: Logger = createLogger('debug', new Writable({ write: (chunk, _enc, done) => (logLines.push(String(chunk)), done()) }));
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const runtimes = new Map<string, SourceRuntime>(createSourceRuntimes(config, { redis, logger }).map((r) => [r.name, r]));

  return {
    db: database.prisma,
    databaseUrl: database.url,
    careCloud,
    cin7,
    /** The hostile proxies in front of the fakes (with `hostile: true`); they forward unchanged until told otherwise. */
    get hostile(): { carecloud: HostileServer; cin7: HostileServer } {
      if (!hostile) throw new Error('createHarness({ hostile: true }) puts the hostile proxies in front of the fakes');
      return hostile;
    },
    config,
    env,
    prefix,
    logger,
    logLines,
    redis,
    runtime: (source: string) => runtimes.get(source)!,
    /** One run of a source's vouchers stream, straight through the engine (no queue). */
    async sync(source: 'carecloud' | 'cin7', mode: SyncMode = 'incremental', options: { signal?: AbortSignal; clock?: Clock } = {}) {
      const runtime = runtimes.get(source)!;
      return runSync({ source, stream: runtime.streams[0]!, mode, client: runtime.client, db: database.prisma, logger, settings: runtime.settings, ...options });
    },
    async vouchers(source: string) {
      return database.prisma.voucher.findMany({ where: { source }, orderBy: { sourceId: 'asc' } });
    },
    async close() {
      await Promise.allSettled([careCloud.stop(), cin7.stop(), hostile?.carecloud.stop(), hostile?.cin7.stop()]);
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
      await database.drop();
    },
  };
}

export type Harness = Awaited<ReturnType<typeof createHarness>>;
