/**
 * The only reader of process.env. Every setting is parsed and validated once, at start-up; a missing or
 * invalid value is reported as one line naming the variable and what is wrong, never its secret value.
 */
import { existsSync } from 'node:fs';
import { inspect } from 'node:util';
import { IANAZone } from 'luxon';
import { z } from 'zod';
import { ConfigError } from './errors.ts';
import { registerSecret } from './secrets.ts';

/** A secret value that refuses to be printed: logs, errors and JSON show `[redacted]`. */
export class Secret {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
    // From now on every error text, log line and ledger row is scrubbed of it (src/secrets.ts).
    registerSecret(value);
  }
  reveal(): string {
    return this.#value;
  }
  toString(): string {
    return '[redacted]';
  }
  toJSON(): string {
    return '[redacted]';
  }
  [inspect.custom](): string {
    return '[redacted]';
  }
}

/** One window of a rate limit: at most `max` requests in any rolling `windowMs`. */
export interface RateWindow {
  max: number;
  windowMs: number;
}

/** When a job runs: every N milliseconds, or on a cron pattern. */
export type Schedule = { every: number } | { pattern: string } | { off: true };

export interface SourceLimits {
  /** Rolling windows, all enforced together across every worker through Redis. */
  windows: RateWindow[];
  /** Requests allowed in any rolling 24 hours; null = no daily budget. */
  dailyBudget: number | null;
}

export interface CareCloudConfig {
  baseUrl: string;
  login: string;
  password: Secret;
  appId: Secret;
  timezone: string;
  pageSize: number;
  /** Records re-read at each page boundary, to detect rows shifting while we page. */
  pageOverlap: number;
  /** Pages per slice when a full scan or first backfill is split across workers. */
  slicePages: number;
  lookbackMs: number;
  schedule: Schedule;
  fullSchedule: Schedule;
  limits: SourceLimits;
  confirmMax: number;
}

export interface Cin7Config {
  baseUrl: string;
  username: string;
  apiKey: Secret;
  /** Zone of dates that carry no offset. */
  timezone: string;
  pageSize: number;
  /** Pages per slice when a full scan or first backfill is split across workers (default 50). */
  slicePages: number;
  lookbackMs: number;
  schedule: Schedule;
  reconcileSchedule: Schedule;
  limits: SourceLimits;
  confirmMax: number;
}

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

export interface Config {
  databaseUrl: Secret;
  redisUrl: Secret;
  logLevel: string;
  http: HttpConfig;
  jobs: JobsConfig;
  /** null when the source's credentials are absent: it is then not scheduled. */
  carecloud: CareCloudConfig | null;
  cin7: Cin7Config | null;
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, min: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses `500ms`, `30s`, `10m`, `1h`, `7d` (or a bare number of milliseconds). */
export function parseDuration(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d)?$/.exec(text.trim());
  if (!match) return undefined;
  const ms = Number(match[1]) * DURATION_UNITS[match[2] ?? 'ms']!;
  return Number.isFinite(ms) ? Math.round(ms) : undefined;
}

const SIZE_UNITS: Record<string, number> = { b: 1, kb: 1024, kib: 1024, mb: 1024 ** 2, mib: 1024 ** 2, gb: 1024 ** 3, gib: 1024 ** 3 };

/** Parses `512kB`, `16MB`, `1GB` (binary multiples: 1 MB = 1,048,576 bytes) or a bare number of bytes. */
export function parseSize(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)\s*([kmg]i?b|b)?$/i.exec(text.trim());
  if (!match) return undefined;
  const bytes = Number(match[1]) * SIZE_UNITS[(match[2] ?? 'b').toLowerCase()]!;
  return Number.isFinite(bytes) ? Math.round(bytes) : undefined;
}

const CRON = /^(\S+\s+){4,5}\S+$/;

function parseSchedule(text: string): Schedule | undefined {
  const value = text.trim();
  if (value === 'off') return { off: true };
  if (CRON.test(value)) return { pattern: value };
  const every = parseDuration(value);
  return every !== undefined && every >= 1000 ? { every } : undefined;
}

/** Parses `3/s,60/min` into rolling windows. */
export function parseRateWindows(text: string): RateWindow[] | undefined {
  const windows: RateWindow[] = [];
  for (const part of text.split(',')) {
    const match = /^\s*(\d+)\s*\/\s*(\d*)\s*(ms|s|m|min|h|d)\s*$/.exec(part);
    if (!match) return undefined;
    const max = Number(match[1]);
    const windowMs = Number(match[2] || 1) * DURATION_UNITS[match[3]!]!;
    if (max < 1 || windowMs < 1) return undefined;
    windows.push({ max, windowMs });
  }
  return windows.length > 0 ? windows : undefined;
}

const str = z.string().trim();
const int = (min: number, max: number) => {
  const message = `must be a whole number from ${min} to ${max}`;
  return str.pipe(z.coerce.number<string>({ message }).int(message).min(min, message).max(max, message));
};
const duration = str.transform((value, ctx) => {
  const ms = parseDuration(value);
  if (ms === undefined) ctx.addIssue({ code: 'custom', message: 'must be a duration such as 30s, 10m, 1h or 7d' });
  return ms ?? 0;
});
const MIN_RESPONSE_SIZE = 64 * 1024;
// Above this one response alone would crowd the 192 MB heap `npm start` gives a worker.
const MAX_RESPONSE_SIZE = 128 * 1024 ** 2;
const size = str.transform((value, ctx) => {
  const bytes = parseSize(value);
  if (bytes === undefined || bytes < MIN_RESPONSE_SIZE || bytes > MAX_RESPONSE_SIZE) {
    ctx.addIssue({ code: 'custom', message: 'must be a size from 64kB to 128MB, such as 512kB or 16MB' });
  }
  return bytes ?? 0;
});
const schedule = str.transform((value, ctx) => {
  const parsed = parseSchedule(value);
  if (!parsed) ctx.addIssue({ code: 'custom', message: 'must be a duration of at least 1s (5m, 1h), a cron pattern (0 3 * * *) or off' });
  return parsed ?? { off: true as const };
});
const rateWindows = str.transform((value, ctx) => {
  const parsed = parseRateWindows(value);
  if (!parsed) ctx.addIssue({ code: 'custom', message: 'must be a list of limits such as 3/s,60/min' });
  return parsed ?? [];
});
const budget = str.transform((value, ctx) => {
  if (value === 'off' || value === '0') return null;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) ctx.addIssue({ code: 'custom', message: 'must be a whole number of requests per day, or off' });
  return n;
});
const url = (protocols: string[]) =>
  str.refine((value) => {
    try {
      return protocols.includes(new URL(value).protocol);
    } catch {
      return false;
    }
  }, `must be a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}`);
const timezone = str.refine((value) => IANAZone.isValidZone(value), 'must be an IANA time zone such as Europe/Prague');
const logLevel = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
  message: 'must be one of fatal, error, warn, info, debug, trace, silent',
});

/** Every variable, its default and its parser. The README and .env.example list the same names. */
const schema = z.object({
  DATABASE_URL: url(['postgres:', 'postgresql:']).default('postgresql://postgres@localhost:5432/voucher_sync'),
  REDIS_URL: url(['redis:', 'rediss:']).default('redis://localhost:6379'),
  LOG_LEVEL: logLevel.default('info'),
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

  CARECLOUD_BASE_URL: url(['http:', 'https:']).optional(),
  CARECLOUD_LOGIN: str.min(1).optional(),
  CARECLOUD_PASSWORD: str.min(1).optional(),
  CARECLOUD_APP_ID: str.min(1).optional(),
  CARECLOUD_TIMEZONE: timezone.optional(),
  CARECLOUD_PAGE_SIZE: int(1, 1000).default(100),
  CARECLOUD_PAGE_OVERLAP: int(1, 50).default(5),
  CARECLOUD_SLICE_PAGES: int(1, 100_000).default(20),
  CARECLOUD_LOOKBACK: duration.default(600_000),
  CARECLOUD_SCHEDULE: schedule.default({ every: 300_000 }),
  CARECLOUD_FULL_SCHEDULE: schedule.default({ pattern: '0 4 * * 0' }),
  CARECLOUD_RATE_LIMIT: rateWindows.default([{ max: 5, windowMs: 1000 }, { max: 120, windowMs: 60_000 }]),
  CARECLOUD_DAILY_BUDGET: budget.default(null),
  CARECLOUD_CONFIRM_MAX: int(0, 100_000).default(100),

  CIN7_BASE_URL: url(['http:', 'https:']).default('https://api.cin7.com/api'),
  CIN7_USERNAME: str.min(1).optional(),
  CIN7_API_KEY: str.min(1).optional(),
  CIN7_TIMEZONE: timezone.default('UTC'),
  CIN7_PAGE_SIZE: int(1, 250).default(250),
  CIN7_SLICE_PAGES: int(1, 100_000).default(50),
  CIN7_LOOKBACK: duration.default(600_000),
  CIN7_SCHEDULE: schedule.default({ every: 300_000 }),
  CIN7_RECONCILE_SCHEDULE: schedule.default({ pattern: '0 3 * * *' }),
  CIN7_RATE_LIMIT: rateWindows.default([{ max: 3, windowMs: 1000 }, { max: 60, windowMs: 60_000 }]),
  CIN7_DAILY_BUDGET: budget.default(5000),
  CIN7_CONFIRM_MAX: int(0, 5000).default(50),
});

export const SECRET_VARIABLES = ['DATABASE_URL', 'REDIS_URL', 'CARECLOUD_PASSWORD', 'CARECLOUD_APP_ID', 'CIN7_API_KEY'];

type Env = Record<string, string | undefined>;

/** Reads `.env` from the working directory when present; variables already set win. */
export function loadDotEnv(path = '.env'): void {
  if (existsSync(path)) process.loadEnvFile(path);
}

/** Groups of variables that enable a source only when all are present. */
const CREDENTIALS = {
  carecloud: ['CARECLOUD_BASE_URL', 'CARECLOUD_LOGIN', 'CARECLOUD_PASSWORD', 'CARECLOUD_APP_ID', 'CARECLOUD_TIMEZONE'],
  cin7: ['CIN7_USERNAME', 'CIN7_API_KEY'],
} as const;

export function loadConfig(env: Env = process.env): Readonly<Config> {
  // Empty strings count as unset, so that `FOO=` in a .env file means "use the default".
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v.trim() !== ''));
  const parsed = schema.safeParse(cleaned);
  const problems: string[] = [];
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const name = String(issue.path[0]);
      const shown = SECRET_VARIABLES.includes(name) ? '' : ` (got ${JSON.stringify(cleaned[name])})`;
      problems.push(`${name} ${issue.message}${shown}`);
    }
  }
  for (const [source, names] of Object.entries(CREDENTIALS)) {
    const present = names.filter((n) => cleaned[n] !== undefined);
    if (present.length > 0 && present.length < names.length) {
      const missing = names.filter((n) => cleaned[n] === undefined);
      problems.push(`${missing.join(', ')} must be set to sync ${source} (${present.join(', ')} ${present.length === 1 ? 'is' : 'are'} set)`);
    }
  }
  if (parsed.success && parsed.data.HTTP_REQUEST_TIMEOUT < parsed.data.HTTP_READ_TIMEOUT) {
    problems.push(`HTTP_REQUEST_TIMEOUT must be at least HTTP_READ_TIMEOUT (got ${cleaned.HTTP_REQUEST_TIMEOUT ?? '2m'} and ${cleaned.HTTP_READ_TIMEOUT ?? '30s'})`);
  }
  if (problems.length > 0 || !parsed.success) throw new ConfigError(problems.join('\n'));
  const e = parsed.data;
  const config: Config = {
    databaseUrl: new Secret(e.DATABASE_URL),
    redisUrl: new Secret(e.REDIS_URL),
    logLevel: e.LOG_LEVEL,
    http: {
      connectTimeoutMs: e.HTTP_CONNECT_TIMEOUT,
      readTimeoutMs: e.HTTP_READ_TIMEOUT,
      retries: e.HTTP_RETRIES,
      maxInlineWaitMs: e.HTTP_MAX_INLINE_WAIT,
      retryBackoffMs: e.HTTP_RETRY_BACKOFF,
      requestTimeoutMs: e.HTTP_REQUEST_TIMEOUT,
      maxResponseBytes: e.HTTP_MAX_RESPONSE_SIZE,
    },
    jobs: { prefix: e.QUEUE_PREFIX, sliceConcurrency: e.SLICE_CONCURRENCY, attempts: e.JOB_ATTEMPTS, backoffMs: e.JOB_BACKOFF },
    carecloud:
      e.CARECLOUD_LOGIN && e.CARECLOUD_PASSWORD && e.CARECLOUD_APP_ID && e.CARECLOUD_BASE_URL && e.CARECLOUD_TIMEZONE
        ? {
            baseUrl: e.CARECLOUD_BASE_URL.replace(/\/+$/, ''),
            login: e.CARECLOUD_LOGIN,
            password: new Secret(e.CARECLOUD_PASSWORD),
            appId: new Secret(e.CARECLOUD_APP_ID),
            timezone: e.CARECLOUD_TIMEZONE,
            pageSize: e.CARECLOUD_PAGE_SIZE,
            pageOverlap: Math.min(e.CARECLOUD_PAGE_OVERLAP, e.CARECLOUD_PAGE_SIZE - 1),
            slicePages: e.CARECLOUD_SLICE_PAGES,
            lookbackMs: e.CARECLOUD_LOOKBACK,
            schedule: e.CARECLOUD_SCHEDULE,
            fullSchedule: e.CARECLOUD_FULL_SCHEDULE,
            limits: { windows: e.CARECLOUD_RATE_LIMIT, dailyBudget: e.CARECLOUD_DAILY_BUDGET },
            confirmMax: e.CARECLOUD_CONFIRM_MAX,
          }
        : null,
    cin7:
      e.CIN7_USERNAME && e.CIN7_API_KEY
        ? {
            baseUrl: e.CIN7_BASE_URL.replace(/\/+$/, ''),
            username: e.CIN7_USERNAME,
            apiKey: new Secret(e.CIN7_API_KEY),
            timezone: e.CIN7_TIMEZONE,
            pageSize: e.CIN7_PAGE_SIZE,
            slicePages: e.CIN7_SLICE_PAGES,
            lookbackMs: e.CIN7_LOOKBACK,
            schedule: e.CIN7_SCHEDULE,
            reconcileSchedule: e.CIN7_RECONCILE_SCHEDULE,
            limits: { windows: e.CIN7_RATE_LIMIT, dailyBudget: e.CIN7_DAILY_BUDGET },
            confirmMax: e.CIN7_CONFIRM_MAX,
          }
        : null,
  };
  return deepFreeze(config);
}

function deepFreeze<T>(value: T): Readonly<T> {
  if (value && typeof value === 'object' && !(value instanceof Secret)) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
