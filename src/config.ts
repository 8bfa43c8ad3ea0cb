/**
 * The only reader of process.env. Every setting is parsed and validated once, at start-up; a missing or
 * invalid value is reported as one line naming the variable and what is wrong, never its secret value.
 *
 * The shared settings are declared here; each source declares its own (src/sources/<name>/config.ts) and this
 * file assembles what every registered source declares: its variables, its secrets, its credentials.
 */
import { existsSync } from 'node:fs';
import { z } from 'zod';
import { duration, durationOrOff, int, size, str, timezone, url, Secret, type Env } from './config-fields.ts';
import { ConfigError } from './errors.ts';
import { sources } from './sources/index.ts';

export { parseDuration, parseRateWindows, parseSize, Secret } from './config-fields.ts';
export type { RateWindow, Schedule, SourceLimits } from './config-fields.ts';

export interface HttpConfig {
  connectTimeoutMs: number;
  readTimeoutMs: number;
  retries: number;
  /** A wait longer than this (Retry-After, backoff, exhausted budget) is handed to the queue. */
  maxInlineWaitMs: number;
  /** Wait before the first retry of a request; doubles at each further one (±20 % jitter). */
  retryBackoffMs: number;
  /**
   * Overall deadline of one request attempt, body included (HTTP_REQUEST_TIMEOUT, default 2 min, at least the read
   * timeout): a server that drips its answer cannot hold a worker, and the source's lock, for ever.
   */
  requestTimeoutMs: number;
  /** Largest response body once decompressed, in bytes (HTTP_MAX_RESPONSE_SIZE, default 16 MB). */
  maxResponseBytes: number;
}

export interface JobsConfig {
  prefix: string;
  /** Slices of a split scan one worker process reads at the same time. */
  sliceConcurrency: number;
  attempts: number;
  backoffMs: number;
}

/**
 * Each source's section, by source name. A source types its own entry by augmenting this interface from its
 * folder (`declare module '../../config.ts'`), so that this file never names one.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- filled by declaration merging
export interface SourceSections {}

/** The HTTP endpoint of a service process (health, metrics, queue dashboard, status page). */
export interface ServerConfig {
  /** HTTP_PORT; null = no endpoint. */
  port: number | null;
  /** HTTP_HOST, default 127.0.0.1. A host other than loopback requires a token. */
  host: string;
  /** HTTP_TOKEN: when set, everything but /healthz and /readyz needs `Authorization: Bearer <token>`. */
  token: Secret | null;
}

export interface AlertsConfig {
  /** ALERT_WEBHOOK_URL: where a JSON POST goes when a source's health changes; null = no webhook. */
  webhookUrl: Secret | null;
  /** ALERT_STALE_AFTER: a source is stale when its data is older than its schedule's interval plus this. */
  staleMarginMs: number;
  /** ALERT_FAILING_RUNS: consecutive failed runs after which a source counts as failing in alerts. */
  failingRuns: number;
}

export interface ReportingConfig {
  /** REPORTING_TIMEZONE: the time zone of reporting.voucher_daily's days (IANA; default UTC). */
  timezone: string;
  /** HISTORY_RETENTION: closed versions older than this are pruned; null (`off`, the default) keeps them all. */
  historyRetentionMs: number | null;
}

export interface Config {
  databaseUrl: Secret;
  redisUrl: Secret;
  logLevel: string;
  /** LOG_FORMAT: `pretty` (readable, for people; the default on a terminal) or `json`. */
  logFormat: 'json' | 'pretty';
  server: ServerConfig;
  alerts: AlertsConfig;
  reporting: ReportingConfig;
  http: HttpConfig;
  jobs: JobsConfig;
  /** Every registered source's section; null when its credentials are absent: it is then not scheduled. */
  sources: SourceSections & Record<string, unknown>;
}

const logLevel = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
  message: 'must be one of fatal, error, warn, info, debug, trace, silent',
});

/** The shared variables, their defaults and parsers; each source adds its own. .env.example lists them all. */
const shared = {
  DATABASE_URL: url(['postgres:', 'postgresql:']).default('postgresql://postgres@localhost:5432/voucher_sync'),
  REDIS_URL: url(['redis:', 'rediss:']).default('redis://localhost:6379'),
  LOG_LEVEL: logLevel.default('info'),
  LOG_FORMAT: z.enum(['json', 'pretty'], { message: 'must be json or pretty' }).optional(),
  HTTP_PORT: int(1, 65535).optional(),
  HTTP_HOST: str.default('127.0.0.1'),
  HTTP_TOKEN: str.min(16, 'must be at least 16 characters').optional(),
  ALERT_WEBHOOK_URL: url(['http:', 'https:']).optional(),
  ALERT_STALE_AFTER: duration.default(15 * 60_000),
  ALERT_FAILING_RUNS: int(1, 1000).default(3),
  REPORTING_TIMEZONE: timezone.default('UTC'),
  HISTORY_RETENTION: durationOrOff.default(null),
  HTTP_CONNECT_TIMEOUT: duration.default(10_000),
  HTTP_READ_TIMEOUT: duration.default(30_000),
  HTTP_RETRIES: int(0, 20).default(4),
  HTTP_MAX_INLINE_WAIT: duration.default(30_000),
  HTTP_RETRY_BACKOFF: duration.default(1000),
  HTTP_REQUEST_TIMEOUT: duration.default(120_000),
  // 16 MB: 30 times a page of 1,000 CareCloud vouchers, and room in the 192 MB heap for the few responses a
  // worker holds at once (slices in parallel, each with a page fetched ahead) with their parsed records.
  HTTP_MAX_RESPONSE_SIZE: size.default(16 * 1024 ** 2),
  QUEUE_PREFIX: str.regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1 to 64 letters, digits, - or _').default('voucher-sync'),
  JOB_ATTEMPTS: int(1, 100).default(8),
  SLICE_CONCURRENCY: int(1, 32).default(2),
  JOB_BACKOFF: duration.default(30_000),
};

/** Variables whose values are never printed: the shared ones and every registered source's. */
export function secretVariables(): string[] {
  return ['DATABASE_URL', 'REDIS_URL', 'HTTP_TOKEN', 'ALERT_WEBHOOK_URL', ...sources.flatMap((s) => s.config.secrets)];
}

/** Reads `.env` from the working directory when present; variables already set win. */
export function loadDotEnv(path = '.env'): void {
  if (existsSync(path)) process.loadEnvFile(path);
}

/** A source's credentials, some but not all set: one line naming what is missing. */
function halfSet(source: string, names: readonly string[], env: Env): string[] {
  const present = names.filter((n) => env[n] !== undefined);
  if (present.length === 0 || present.length === names.length) return [];
  const missing = names.filter((n) => env[n] === undefined);
  return [
    `${missing.join(', ')} must be set to sync ${source} (${present.join(', ')} ${present.length === 1 ? 'is' : 'are'} set)`,
  ];
}

export function loadConfig(env: Env = process.env): Readonly<Config> {
  // Empty strings count as unset, so that `FOO=` in a .env file means "use the default".
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v.trim() !== ''));
  const schema = z.object(Object.assign({}, shared, ...sources.map((s) => s.config.variables)) as typeof shared);
  const parsed = schema.safeParse(cleaned);
  const problems: string[] = [];
  if (!parsed.success) {
    const secrets = secretVariables();
    for (const issue of parsed.error.issues) {
      const name = String(issue.path[0]);
      const shown = secrets.includes(name) ? '' : ` (got ${JSON.stringify(cleaned[name])})`;
      problems.push(`${name} ${issue.message}${shown}`);
    }
  }
  for (const source of sources) problems.push(...halfSet(source.name, source.config.credentials, cleaned));
  if (parsed.success) {
    const e = parsed.data;
    for (const source of sources) problems.push(...(source.config.check?.(e, cleaned) ?? []));
    if (e.HTTP_PORT !== undefined && !isLoopback(e.HTTP_HOST) && e.HTTP_TOKEN === undefined) {
      problems.push(
        `HTTP_HOST is not a loopback address, so HTTP_TOKEN must be set: the endpoint would be open to the network (got ${JSON.stringify(e.HTTP_HOST)})`,
      );
    }
    if (e.HTTP_REQUEST_TIMEOUT < e.HTTP_READ_TIMEOUT) {
      problems.push(
        `HTTP_REQUEST_TIMEOUT must be at least HTTP_READ_TIMEOUT (got ${cleaned.HTTP_REQUEST_TIMEOUT ?? '2m'} and ${cleaned.HTTP_READ_TIMEOUT ?? '30s'})`,
      );
    }
  }
  if (problems.length > 0 || !parsed.success) throw new ConfigError(problems.join('\n'));
  const e = parsed.data;
  const config: Config = {
    databaseUrl: new Secret(e.DATABASE_URL),
    redisUrl: new Secret(e.REDIS_URL),
    logLevel: e.LOG_LEVEL,
    logFormat: e.LOG_FORMAT ?? (process.stdout.isTTY ? 'pretty' : 'json'),
    server: {
      port: e.HTTP_PORT ?? null,
      host: e.HTTP_HOST,
      token: e.HTTP_TOKEN === undefined ? null : new Secret(e.HTTP_TOKEN),
    },
    alerts: {
      webhookUrl: e.ALERT_WEBHOOK_URL === undefined ? null : new Secret(e.ALERT_WEBHOOK_URL),
      staleMarginMs: e.ALERT_STALE_AFTER,
      failingRuns: e.ALERT_FAILING_RUNS,
    },
    reporting: { timezone: e.REPORTING_TIMEZONE, historyRetentionMs: e.HISTORY_RETENTION },
    http: {
      connectTimeoutMs: e.HTTP_CONNECT_TIMEOUT,
      readTimeoutMs: e.HTTP_READ_TIMEOUT,
      retries: e.HTTP_RETRIES,
      maxInlineWaitMs: e.HTTP_MAX_INLINE_WAIT,
      retryBackoffMs: e.HTTP_RETRY_BACKOFF,
      requestTimeoutMs: e.HTTP_REQUEST_TIMEOUT,
      maxResponseBytes: e.HTTP_MAX_RESPONSE_SIZE,
    },
    jobs: {
      prefix: e.QUEUE_PREFIX,
      sliceConcurrency: e.SLICE_CONCURRENCY,
      attempts: e.JOB_ATTEMPTS,
      backoffMs: e.JOB_BACKOFF,
    },
    sources: Object.fromEntries(
      sources.map((s) => [
        s.name,
        s.config.credentials.every((n) => cleaned[n] !== undefined) ? s.config.section(e) : null,
      ]),
    ) as Config['sources'],
  };
  return deepFreeze(config);
}

/** 127.0.0.0/8, ::1 and `localhost`: reachable only from this machine. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

function deepFreeze<T>(value: T): Readonly<T> {
  if (value && typeof value === 'object' && !(value instanceof Secret)) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
