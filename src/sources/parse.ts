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
  const guess = DateTime.fromObject({ year, month, day, hour, minute, second }, { zone });
  if (!guess.isValid) throw new FieldError(`"${text}" is not a real date (${guess.invalidExplanation ?? guess.invalidReason})`);
  const candidates = guess.getPossibleOffsets().filter((dt) => dt.hour === hour && dt.minute === minute && dt.day === day);
  if (candidates.length === 0) {
    throw new FieldError(`"${text}" does not exist in ${zone} (the clocks skip that hour for daylight saving)`);
  }
  const earliest = candidates.reduce((a, b) => (a.toMillis() <= b.toMillis() ? a : b));
  return earliest.toUTC().toISO()!;
}

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$/;

/**
 * Reads an ISO 8601 date-time with any number of fractional digits (Cin7 sends seven) and an optional
 * offset; without an offset the time is read in `defaultZone`. Returns the UTC instant as an ISO string
 * (millisecond precision: the fraction beyond is dropped, never rounded up past the true time).
 */
export function parseIsoDateTime(text: string, defaultZone: string): string {
  if (!ISO.test(text)) throw new FieldError(`"${text}" is not an ISO 8601 date-time`);
  // Luxon reads at most milliseconds; cut longer fractions so that the value is truncated, not rounded.
  const trimmed = text.replace(/(\.\d{3})\d+/, '$1');
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
