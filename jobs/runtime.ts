/**
 * Builds what a process needs per configured source: its client (one per process, so a CareCloud token
 * is reused across runs), its streams, its settings and its rate limiter (shared through Redis).
 */
import type { Redis } from 'ioredis';
import type { Config } from '../src/config.ts';
import { createRateLimiter, type RateLimiter } from '../src/http/rate-limiter.ts';
import type { Logger } from '../src/logger.ts';
import { sectionOf, sources } from '../src/sources/index.ts';
import type { SourceSettings, StreamDefinition } from '../src/types.ts';

export interface SourceRuntime {
  name: string;
  settings: SourceSettings;
  client: unknown;
  streams: StreamDefinition<unknown>[];
  limiter: RateLimiter;
}

export function createSourceRuntimes(config: Config, deps: { redis: Redis; logger: Logger }): SourceRuntime[] {
  const runtimes: SourceRuntime[] = [];
  for (const source of sources) {
    const section = sectionOf(config, source);
    if (section === null) {
      deps.logger.info({ source: source.name }, 'not scheduled: its credentials are not configured');
      continue;
    }
    const settings = source.settings(section);
    const limiter = createRateLimiter({
      redis: deps.redis,
      key: `${config.jobs.prefix}:limiter:${source.name}`,
      windows: settings.limits.windows,
      dailyBudget: settings.limits.dailyBudget,
      incrementalReserve: settings.limits.incrementalReserve,
      budgetWindowMs: settings.limits.budgetWindowMs,
    });
    const logger = deps.logger.child({ source: source.name });
    const client = source.createClient(section, { http: config.http, limiter, logger });
    runtimes.push({ name: source.name, settings, client, streams: source.createStreams(section), limiter });
  }
  return runtimes;
}
