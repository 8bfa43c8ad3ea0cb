/**
 * Everything an end-to-end test needs: a fresh database, the fake server of every registered source, a config
 * pointing at them with a unique queue prefix, and the real clients and streams. Call `close()` in
 * afterEach/afterAll. Each source's fake comes from its definition (`fake`, src/sources/<name>/fake.ts); `careCloud`
 * and `cin7` are the two built-in ones, typed.
 */
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { loadConfig, type Config } from '../../src/config.ts';
import type { FakeCareCloud, FakeCareCloudOptions } from '../../src/fake/carecloud.ts';
import type { FakeCin7, FakeCin7Options } from '../../src/fake/cin7.ts';
import { startFakes } from '../../src/fake/start-fakes.ts';
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
  /** Options of any registered source's fake, by its key (`careCloud`, `cin7`, …), merged over its test options. */
  fakes?: Record<string, object>;
  /** Extra environment for loadConfig (limits, page sizes…). */
  env?: Record<string, string>;
  /** Put a hostile proxy (test/hostile/) in front of the fakes; switch its behaviour with `hostile.<source>.set()`. */
  hostile?: boolean;
}

type Hostile = Record<string, HostileServer> & { carecloud: HostileServer; cin7: HostileServer };

export async function createHarness(options: HarnessOptions = {}) {
  const database = await createTestDatabase();
  const prefix = `vs-test-${randomUUID().slice(0, 8)}`;
  const proxies: Record<string, HostileServer> = {};
  const started = await startFakes(
    (fake) => ({
      options: {
        ...fake.test.options,
        ...(options as Record<string, object | undefined>)[fake.key],
        ...options.fakes?.[fake.key],
      },
    }),
    async (name, url) => (options.hostile ? (proxies[name] = await startHostileServer(url)).baseUrl : url),
  );
  const fakes = Object.fromEntries(started.started.map((s) => [s.name, s.server]));
  const sourceEnv: Record<string, string> = Object.assign(
    {},
    started.env,
    ...started.started.map((s) => s.fake.test.env),
  );
  // A knob for trying the suite with other slice sizes: every source's test slice size at once.
  const slicePages = process.env.TEST_SLICE_PAGES;
  if (slicePages)
    for (const name of Object.keys(sourceEnv).filter((n) => n.endsWith('_SLICE_PAGES'))) sourceEnv[name] = slicePages;
  const hostile = options.hostile ? (proxies as Hostile) : null;
  // Typed for the variables tests of the two built-in sources read back (security.test.ts).
  const env: Record<string, string> & Record<'CARECLOUD_BASE_URL' | 'CIN7_BASE_URL', string> = {
    CARECLOUD_BASE_URL: '',
    CIN7_BASE_URL: '',
    DATABASE_URL: database.url,
    REDIS_URL,
    QUEUE_PREFIX: prefix,
    LOG_LEVEL: 'debug',
    JOB_BACKOFF: '200ms',
    HTTP_MAX_INLINE_WAIT: '5s',
    HTTP_RETRY_BACKOFF: '100ms',
    ...sourceEnv,
    ...options.env,
  };
  const config: Config = loadConfig(env);
  const logLines: string[] = [];
  const logger: Logger = createLogger(
    'debug',
    new Writable({ write: (chunk, _enc, done) => (logLines.push(String(chunk)), done()) }),
  );
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const runtimes = new Map<string, SourceRuntime>(
    createSourceRuntimes(config, { redis, logger }).map((r) => [r.name, r]),
  );

  return {
    db: database.prisma,
    databaseUrl: database.url,
    /** Every registered source's fake, by source name. */
    fakes,
    careCloud: fakes.carecloud as FakeCareCloud,
    cin7: fakes.cin7 as FakeCin7,
    /** The hostile proxies in front of the fakes (with `hostile: true`); they forward unchanged until told otherwise. */
    get hostile(): Hostile {
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
    /** One run of a source's first stream, straight through the engine (no queue). */
    async sync(source: string, mode: SyncMode = 'incremental', options: { signal?: AbortSignal; clock?: Clock } = {}) {
      const runtime = runtimes.get(source);
      if (!runtime) throw new Error(`source "${source}" is not registered or not configured`);
      return runSync({
        source,
        stream: runtime.streams[0]!,
        mode,
        client: runtime.client,
        db: database.prisma,
        logger,
        settings: runtime.settings,
        ...options,
      });
    },
    async vouchers(source: string) {
      return database.prisma.voucher.findMany({ where: { source }, orderBy: { sourceId: 'asc' } });
    },
    async close() {
      await Promise.allSettled([started.stop(), ...Object.values(proxies).map((p) => p.stop())]);
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
      await database.drop();
    },
  };
}

export type Harness = Awaited<ReturnType<typeof createHarness>>;
