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
  const match = LOCAL.exec(text);
  if (!match) throw new FieldError(`"${text}" is not a date-time of the form YYYY-MM-DD HH:MM:SS`);
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const wall = wallClockMs(year, month, day, hour, minute, second);
  if (wall === null) throw new FieldError(`"${text}" is not a real date`);
  // Fast path: an hour without a clock change has one offset for all its minutes.
  const offset = steadyOffset(zone, year, month, day, hour);
  if (offset !== null) return new Date(wall - offset * 60_000).toISOString();
  const guess = DateTime.fromObject({ year, month, day, hour, minute, second }, { zone });
  if (!guess.isValid) throw new FieldError(`"${text}" is not a real date (${guess.invalidExplanation ?? guess.invalidReason})`);
  const candidates = guess.getPossibleOffsets().filter((dt) => dt.hour === hour && dt.minute === minute && dt.day === day);
  if (candidates.length === 0) {
    throw new FieldError(`"${text}" does not exist in ${zone} (the clocks skip that hour for daylight saving)`);
  }
  const earliest = candidates.reduce((a, b) => (a.toMillis() <= b.toMillis() ? a : b));
  return earliest.toUTC().toISO()!;
}

/** The wall-clock fields as if they were UTC, in ms; null when they do not name a real date (Feb 30, 0000-00-00). */
function wallClockMs(year: number, month: number, day: number, hour: number, minute: number, second: number): number | null {
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return null;
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day); // setUTCFullYear, unlike Date.UTC, does not read 0-99 as 1900-1999
  date.setUTCHours(hour, minute, second, 0);
  return date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day ? date.getTime() : null;
}

/**
 * The zone's offset (minutes) for a whole local hour, or null when the clocks change within it. Resolving a
 * zone offset costs tens of microseconds and a page holds thousands of dates that share a few hours, so the
 * answers are memoized: a pure function of (zone, hour), bounded in size.
 */
const hourOffsets = new Map<string, number | null>();
function steadyOffset(zone: string, year: number, month: number, day: number, hour: number): number | null {
  const key = `${zone}|${year}-${month}-${day}T${hour}`;
  let offset = hourOffsets.get(key);
  if (offset === undefined) {
    const first = DateTime.fromObject({ year, month, day, hour, minute: 0, second: 0 }, { zone }).getPossibleOffsets();
    const last = DateTime.fromObject({ year, month, day, hour, minute: 59, second: 59 }, { zone }).getPossibleOffsets();
    // Both ends of the hour exist exactly once (Luxon moves a skipped time forward: compare the minutes too)
    // and share one offset.
    const steady =
      first.length === 1 && last.length === 1 && first[0]!.offset === last[0]!.offset &&
      first[0]!.hour === hour && first[0]!.minute === 0 && last[0]!.hour === hour && last[0]!.minute === 59;
    offset = steady ? first[0]!.offset : null;
    if (hourOffsets.size >= 200_000) hourOffsets.clear();
    hourOffsets.set(key, offset);
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
    if (wallClockMs(year, month, day, hour, minute, Number(fields[6] ?? 0)) === null) throw new FieldError(`"${text}" is not a real date`);
    const ms = Date.parse(hasOffset ? trimmed : `${trimmed}Z`);
    if (Number.isFinite(ms)) return new Date(ms).toISOString();
  }
  const parsed = DateTime.fromISO(trimmed, { zone: defaultZone, setZone: true });
  if (!parsed.isValid) throw new FieldError(`"${text}" is not a real date (${parsed.invalidExplanation ?? parsed.invalidReason})`);
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
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  if (Array.isArray(value)) return 'an array';
  if (value === null) return 'null';
  return typeof value === 'object' ? 'an object' : `${typeof value} ${String(value)}`;
}
