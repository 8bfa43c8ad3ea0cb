/**
 * What a config fragment is made of: the Secret wrapper, the syntax of durations, sizes, schedules and rate limits,
 * and the zod fields that read them. src/config.ts builds the shared settings from these and each source its own
 * fragment (src/sources/<name>/config.ts); kept apart from src/config.ts, which iterates the registry, so that a
 * source's fragment can use them without an import cycle.
 */
import { inspect } from 'node:util';
import { CronExpressionParser } from 'cron-parser';
import { IANAZone } from 'luxon';
import { z } from 'zod';
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
  /** Requests allowed in any rolling 24 hours (or `budgetWindowMs`); null = no daily budget. */
  dailyBudget: number | null;
  /**
   * Requests of the daily budget kept for incremental runs: a reconciliation or a backfill may spend only the rest
   * (src/sync/budget-plan.ts). Default 0.
   */
  incrementalReserve?: number;
  /** Length of the budget's rolling window, in ms (default 24 hours; shorter only to test the budget plan). */
  budgetWindowMs?: number;
  /** Records one request of a scan reads (the page size): what turns pending records into requests. */
  recordsPerRequest?: number;
}

/** What every source's section holds for the engine and the job layer (src/types.ts SourceSettings). */
export interface CommonSourceConfig {
  /** How far below the watermark an incremental run starts. */
  lookbackMs: number;
  /** When incremental runs start. */
  schedule: Schedule;
  /** When reconciliation (a full scan) runs. */
  reconcileSchedule: Schedule;
  limits: SourceLimits;
  /** Deletion confirmations a full scan may spend. */
  confirmMax: number;
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, min: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses `500ms`, `30s`, `10m`, `1h`, `7d` (or a bare number of milliseconds). */
export function parseDuration(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d)?$/.exec(text.trim());
  if (!match) return undefined;
  const ms = Number(match[1]) * DURATION_UNITS[match[2] ?? 'ms']!;
  return Number.isFinite(ms) ? Math.round(ms) : undefined;
}

const SIZE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1024,
  kib: 1024,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
};

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

/**
 * What is wrong with a cron pattern, as the parser BullMQ's Job Schedulers use (the same cron-parser version) sees
 * it, or null: a pattern that passes here is one the scheduler accepts, so `npm start` cannot fail on it later.
 */
function invalidCron(pattern: string): string | null {
  try {
    CronExpressionParser.parse(pattern);
    return null;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
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

export const str = z.string().trim();
export const int = (min: number, max: number) => {
  const message = `must be a whole number from ${min} to ${max}`;
  return str.pipe(z.coerce.number<string>({ message }).int(message).min(min, message).max(max, message));
};
/** A whole number from `min` to `max`, or `auto` (any case): a value the service finds out at run time. */
export const intOrAuto = (min: number, max: number) =>
  str.transform((value, ctx): number | 'auto' => {
    if (value.toLowerCase() === 'auto') return 'auto';
    const n = Number(value);
    if (value === '' || !Number.isInteger(n) || n < min || n > max)
      ctx.addIssue({ code: 'custom', message: `must be a whole number from ${min} to ${max}, or auto` });
    return n;
  });
export const duration = str.transform((value, ctx) => {
  const ms = parseDuration(value);
  if (ms === undefined) ctx.addIssue({ code: 'custom', message: 'must be a duration such as 30s, 10m, 1h or 7d' });
  return ms ?? 0;
});
/** A duration, or `off` (null): how long something is kept, where `off` keeps it for good. */
export const durationOrOff = str.transform((value, ctx) => {
  if (value === 'off') return null;
  const ms = parseDuration(value);
  if (ms === undefined || ms < 60 * 60_000)
    ctx.addIssue({ code: 'custom', message: 'must be a duration of at least 1h, such as 90d or 400d, or off' });
  return ms ?? null;
});
const MIN_RESPONSE_SIZE = 64 * 1024;
// Above this one response alone would crowd the 192 MB heap `npm start` gives a worker.
const MAX_RESPONSE_SIZE = 128 * 1024 ** 2;
export const size = str.transform((value, ctx) => {
  const bytes = parseSize(value);
  if (bytes === undefined || bytes < MIN_RESPONSE_SIZE || bytes > MAX_RESPONSE_SIZE) {
    ctx.addIssue({ code: 'custom', message: 'must be a size from 64kB to 128MB, such as 512kB or 16MB' });
  }
  return bytes ?? 0;
});
export const schedule = str.transform((value, ctx) => {
  const parsed = parseSchedule(value);
  const cronProblem = parsed && 'pattern' in parsed ? invalidCron(parsed.pattern) : null;
  if (cronProblem !== null) {
    ctx.addIssue({ code: 'custom', message: `is not a valid cron pattern: ${cronProblem}` });
    return { off: true as const };
  }
  if (!parsed)
    ctx.addIssue({
      code: 'custom',
      message: 'must be a duration of at least 1s (5m, 1h), a cron pattern (0 3 * * *) or off',
    });
  return parsed ?? { off: true as const };
});
export const rateWindows = str.transform((value, ctx) => {
  const parsed = parseRateWindows(value);
  if (!parsed) ctx.addIssue({ code: 'custom', message: 'must be a list of limits such as 3/s,60/min' });
  return parsed ?? [];
});
export const budget = str.transform((value, ctx) => {
  if (value === 'off' || value === '0') return null;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    ctx.addIssue({ code: 'custom', message: 'must be a whole number of requests per day, or off' });
  return n;
});
export const url = (protocols: string[]) =>
  str.refine(
    (value) => {
      try {
        return protocols.includes(new URL(value).protocol);
      } catch {
        return false;
      }
    },
    `must be a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}`,
  );
export const timezone = str.refine(
  (value) => IANAZone.isValidZone(value),
  'must be an IANA time zone such as Europe/Prague',
);

/** Variables as set (empty ones removed, so that `FOO=` means "use the default"). */
export type Env = Record<string, string | undefined>;

/**
 * What a source declares of its settings (a Meltano tap's `config_jsonschema`): its variables with their defaults
 * and validation, which of them are secrets, which enable it, and how its section of the config is built.
 */
export interface SourceConfig<Section = unknown> {
  /** Every variable of the source, named with its prefix (`CIN7_PAGE_SIZE`), with its default and parser. */
  variables: z.ZodRawShape;
  /** Variables whose values are never printed, not even in a configuration error. */
  secrets: readonly string[];
  /** All set: the source is synced; none: it is not scheduled; some: a configuration error naming the others. */
  credentials: readonly string[];
  /** Problems no single variable shows (two that disagree): one line each. Gets the parsed and the set values. */
  check?(values: Record<string, unknown>, env: Env): string[];
  /** The source's section, from the parsed variables, once all its credentials are set. */
  section(values: Record<string, unknown>): Section;
}

/** Declares a source's config fragment with its parsed variables typed from its own schema. */
export function defineSourceConfig<Shape extends z.ZodRawShape, Section>(fragment: {
  variables: Shape;
  secrets: readonly (keyof Shape & string)[];
  credentials: readonly (keyof Shape & string)[];
  check?(values: z.output<z.ZodObject<Shape>>, env: Env): string[];
  section(values: z.output<z.ZodObject<Shape>>): Section;
}): SourceConfig<Section> {
  return fragment as unknown as SourceConfig<Section>;
}

/** A base URL as every client joins paths to it: without trailing slashes. */
export const baseUrlOf = (value: string) => value.replace(/\/+$/, '');
