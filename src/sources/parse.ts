/**
 * Parsing rules shared by the sources' record mappers. Each returns the parsed value or throws a
 * `FieldError` whose message says what was wrong in words a person can act on.
 */
import { DateTime } from 'luxon';

export class FieldError extends Error {
  override readonly name = 'FieldError';
}

const LOCAL = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?$/;

/**
 * Reads a local wall-clock time (`YYYY-MM-DD HH:MM:SS` or `YYYY-MM-DDTHH:MM:SS`) in `zone` and returns the
 * UTC instant as an ISO string.
 *
 * Daylight-saving rule: when the wall time occurs twice (the autumn hour that repeats) we take the
 * **earlier** instant. A watermark read too early only makes the next scan re-read a few records; one read
 * too late could skip them. A wall time that never occurs (the spring hour that is skipped) is not a time
 * at all and is refused.
 */
export function parseLocalDateTime(text: string, zone: string): string {
  // Fast path for the usual text: a day without a clock change has one offset for all its times.
  const wall = readWallClock(text);
  if (wall !== null) {
    const offset = steadyDayOffset(zone, wall.year, wall.month, wall.day);
    if (offset !== null) return new Date(wall.ms - offset * 60_000).toISOString();
  }
  const match = LOCAL.exec(text);
  if (!match) throw new FieldError(`"${text}" is not a date-time of the form YYYY-MM-DD HH:MM:SS`);
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const ms = wallClockMs(year, month, day, hour, minute, second);
  if (ms === null) throw new FieldError(`"${text}" is not a real date`);
  const offset = steadyOffset(zone, year, month, day, hour);
  if (offset !== null) return new Date(ms - offset * 60_000).toISOString();
  const guess = DateTime.fromObject({ year, month, day, hour, minute, second }, { zone });
  if (!guess.isValid)
    throw new FieldError(`"${text}" is not a real date (${guess.invalidExplanation ?? guess.invalidReason})`);
  const candidates = guess
    .getPossibleOffsets()
    .filter((dt) => dt.hour === hour && dt.minute === minute && dt.day === day);
  if (candidates.length === 0) {
    throw new FieldError(`"${text}" does not exist in ${zone} (the clocks skip that hour for daylight saving)`);
  }
  const earliest = candidates.reduce((a, b) => (a.toMillis() <= b.toMillis() ? a : b));
  return earliest.toUTC().toISO()!;
}

/**
 * `YYYY-MM-DD HH:MM:SS` (or with T, and a fraction that is ignored) read digit by digit, with the wall
 * clock as if it were UTC in ms; null for anything else or any doubt (the general path then decides).
 */
function readWallClock(text: string): { year: number; month: number; day: number; ms: number } | null {
  if (
    text.length < 19 ||
    (text.length > 19 && (text.charCodeAt(19) !== 46 || text.length === 20 || digits(text, 20, text.length - 20) < 0))
  )
    return null;
  const separator = text.charCodeAt(10);
  if (
    text.charCodeAt(4) !== 45 ||
    text.charCodeAt(7) !== 45 ||
    (separator !== 32 && separator !== 84) ||
    text.charCodeAt(13) !== 58 ||
    text.charCodeAt(16) !== 58
  )
    return null;
  const year = digits(text, 0, 4);
  const month = digits(text, 5, 2);
  const day = digits(text, 8, 2);
  const hour = digits(text, 11, 2);
  const minute = digits(text, 14, 2);
  const second = digits(text, 17, 2);
  // Date.UTC reads years 0-99 as 1900-1999: those take the general path.
  if (
    year < 100 ||
    month < 1 ||
    month > 12 ||
    day < 1 ||
    hour < 0 ||
    hour > 23 ||
    minute < 0 ||
    minute > 59 ||
    second < 0 ||
    second > 59
  )
    return null;
  if (day > 28 && new Date(Date.UTC(year, month, 0)).getUTCDate() < day) return null;
  return { year, month, day, ms: Date.UTC(year, month - 1, day, hour, minute, second) };
}

/** The decimal value of `count` ASCII digits at `at`, or -1 when one is not a digit. */
function digits(text: string, at: number, count: number): number {
  let value = 0;
  for (let i = at; i < at + count; i++) {
    const digit = text.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) return -1;
    value = value * 10 + digit;
  }
  return value;
}

/** The wall-clock fields as if they were UTC, in ms; null when they do not name a real date (Feb 30, 0000-00-00). */
function wallClockMs(
  year: number,
  month: number,
  day: number,
  hour: number,
  minute: number,
  second: number,
): number | null {
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return null;
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day); // setUTCFullYear, unlike Date.UTC, does not read 0-99 as 1900-1999
  date.setUTCHours(hour, minute, second, 0);
  return date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day
    ? date.getTime()
    : null;
}

/**
 * The zone's offset (minutes) for a whole local day or hour, or null when the clocks change within it.
 * Resolving a zone offset costs tens of microseconds and a page holds thousands of dates that share a few
 * days, so the answers are memoized: a pure function of (zone, day or hour), bounded in size.
 */
const steadyHours = new Map<string, number | null>();

/** Per zone, keyed by a number (building a string key per date costs as much as the lookup saves). */
const steadyDays = new Map<string, Map<number, number | null>>();

/** A day counts as steady when its first second, its noon and its last second exist once and share one offset. */
function steadyDayOffset(zone: string, year: number, month: number, day: number): number | null {
  let days = steadyDays.get(zone);
  if (!days) steadyDays.set(zone, (days = new Map()));
  return memoized(days, (year * 16 + month) * 32 + day, () =>
    steady(zone, year, month, day, [
      [0, 0, 0],
      [12, 0, 0],
      [23, 59, 59],
    ]),
  );
}

function steadyOffset(zone: string, year: number, month: number, day: number, hour: number): number | null {
  return memoized(steadyHours, `${zone}|${year}-${month}-${day}T${hour}`, () =>
    steady(zone, year, month, day, [
      [hour, 0, 0],
      [hour, 59, 59],
    ]),
  );
}

function memoized<K>(cache: Map<K, number | null>, key: K, compute: () => number | null): number | null {
  let offset = cache.get(key);
  if (offset === undefined) {
    offset = compute();
    if (cache.size >= 200_000) cache.clear();
    cache.set(key, offset);
  }
  return offset;
}

/** The one offset shared by these wall times when each exists exactly once (Luxon moves a skipped time forward: compare the fields too). */
function steady(
  zone: string,
  year: number,
  month: number,
  day: number,
  times: [number, number, number][],
): number | null {
  let offset: number | null = null;
  for (const [hour, minute, second] of times) {
    const readings = DateTime.fromObject({ year, month, day, hour, minute, second }, { zone }).getPossibleOffsets();
    const only = readings.length === 1 ? readings[0]! : undefined;
    if (
      !only ||
      only.hour !== hour ||
      only.minute !== minute ||
      only.day !== day ||
      (offset !== null && only.offset !== offset)
    )
      return null;
    offset = only.offset;
  }
  return offset;
}

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$/;

/**
 * Reads an ISO 8601 date-time with any number of fractional digits (Cin7 sends seven) and an optional
 * offset; without an offset the time is read in `defaultZone`. Returns the UTC instant as an ISO string
 * (millisecond precision: the fraction beyond is dropped, never rounded up past the true time).
 */
export function parseIsoDateTime(text: string, defaultZone: string): string {
  if (!ISO.test(text)) throw new FieldError(`"${text}" is not an ISO 8601 date-time`);
  // Luxon and Date read at most milliseconds; cut longer fractions so that the value is truncated, not rounded.
  const trimmed = text.replace(/(\.\d{3})\d+/, '$1');
  const hasOffset = /(Z|[+-]\d{2}:?\d{2})$/.test(trimmed);
  if (hasOffset || defaultZone === 'UTC') {
    // Fast path: the instant is fully stated (or UTC); the native parser is exact, once the fields are checked.
    const fields = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?/.exec(trimmed)!;
    const [year, month, day, hour, minute] = fields.slice(1, 6).map(Number) as [number, number, number, number, number];
    if (wallClockMs(year, month, day, hour, minute, Number(fields[6] ?? 0)) === null)
      throw new FieldError(`"${text}" is not a real date`);
    const ms = Date.parse(hasOffset ? trimmed : `${trimmed}Z`);
    if (Number.isFinite(ms)) return new Date(ms).toISOString();
  }
  const parsed = DateTime.fromISO(trimmed, { zone: defaultZone, setZone: true });
  if (!parsed.isValid)
    throw new FieldError(`"${text}" is not a real date (${parsed.invalidExplanation ?? parsed.invalidReason})`);
  return parsed.toUTC().toISO()!;
}

const DECIMAL = /^-?\d+(\.\d+)?$/;

/**
 * Reads a money amount as an exact decimal string. JSON numbers are taken as sent; a string is accepted
 * only when it is an unambiguous decimal with a dot ("12.50"). "12,50" is refused: it could be 12.5 or
 * 1250 depending on locale, and a guess on money is worse than a rejected record.
 */
export function parseAmount(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new FieldError(`${value} is not a finite number`);
    return String(value);
  }
  if (typeof value === 'string' && DECIMAL.test(value.trim())) return value.trim();
  throw new FieldError(`expected a number, got ${describe(value)}`);
}

/** A short, safe description of an unexpected value for an error message. */
export function describe(value: unknown): string {
  if (typeof value === 'string')
    return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  if (Array.isArray(value)) return 'an array';
  if (value === null) return 'null';
  return typeof value === 'object' ? 'an object' : `${typeof value} ${String(value)}`;
}
