/**
 * Reads the fields of one raw API record, collecting every problem instead of stopping at the first, so
 * that a rejected record's reason lists all that is wrong with it ("code: longer than 255 characters;
 * valid_to: "0000-00-00 00:00:00" is not a real date").
 *
 * Hand-written rather than a zod schema because the rules are per field and domain-specific (local times
 * with a daylight-saving rule, money that must not be guessed) and the messages must name the field and
 * the offending value in plain words; unknown fields are simply never looked at, so they never cause a
 * rejection, and the raw record is stored whole.
 */
import type { MapResult, VoucherRow } from '../types.ts';
import { FieldError, describe, parseAmount, parseIsoDateTime, parseLocalDateTime } from './parse.ts';

/** Longest text we keep in an indexed column. */
export const MAX_COLUMN_TEXT = 255;

export class RecordReader {
  readonly problems: string[] = [];
  readonly fields: Record<string, unknown>;

  constructor(raw: unknown) {
    this.fields =
      raw !== null && typeof raw === 'object' && !Array.isArray(raw) ? (raw as Record<string, unknown>) : {};
    if (this.fields !== raw) this.problems.push(`the record is ${describe(raw)}, not an object`);
  }

  // The readers are module-level functions given their argument, not closures made per field: a mapper
  // runs millions of times in a backfill, and under tsx (which keeps function names) each closure costs.
  private attempt<T, A>(name: string, read: (value: unknown, arg: A) => T, arg: A, fallback: T): T {
    try {
      return read(this.fields[name], arg);
    } catch (error) {
      if (!(error instanceof FieldError)) throw error;
      this.problems.push(`${name}: ${error.message}`);
      return fallback;
    }
  }

  /** A text field; numbers are accepted and kept as their decimal text (ids sometimes arrive as numbers). */
  text(name: string, options: { required?: boolean; max?: number } = {}): string | null {
    return this.attempt(name, readText, options, null);
  }

  /** A whole number, kept as its decimal text (an id or a count); a digit-only string is accepted too. */
  wholeNumber(name: string): string | null {
    return this.attempt(name, readWholeNumber, undefined, null);
  }

  localDate(name: string, zone: string): string | null {
    return this.attempt(name, readLocalDate, zone, null);
  }

  isoDate(name: string, defaultZone: string): string | null {
    return this.attempt(name, readIsoDate, defaultZone, null);
  }

  amount(name: string): string | null {
    return this.attempt(name, parseAmount, undefined, null);
  }

  /** One of a fixed set of values; `undefined` when absent. */
  oneOf<T extends string | number>(name: string, allowed: readonly T[]): T | undefined {
    return this.attempt(name, readOneOf<T>, allowed, undefined);
  }

  /** A field kept for reporting only (see labelOf): never a reason to reject the record. */
  label(name: string, max: number | null = MAX_COLUMN_TEXT): string | null {
    return labelOf(this.fields[name], max);
  }

  /** The mapped row, or a rejection listing every problem found. */
  result(row: VoucherRow, raw: unknown): MapResult {
    if (this.problems.length === 0) return { ok: true, row };
    const sourceId = row.sourceId === '' ? null : row.sourceId;
    return { ok: false, reject: { sourceId, reason: this.problems.join('; '), raw } };
  }
}

/**
 * A value promoted from raw to a reporting column (a voucher type, a store, a reward name): a string or a number as
 * its text, cut to `max` characters (null: uncut), anything else (and an empty string) null. Lenient, unlike text():
 * these fields were never validated, and an odd label must not cost the voucher. The migration that added the
 * columns reads stored raw records the same way (prisma/migrations/20261204000100_reporting_schema).
 */
export function labelOf(value: unknown, max: number | null = MAX_COLUMN_TEXT): string | null {
  const text =
    typeof value === 'string' ? value : typeof value === 'number' && Number.isFinite(value) ? String(value) : '';
  if (text === '') return null;
  if (max === null || text.length <= max) return text;
  // Characters as PostgreSQL counts them (code points), not UTF-16 units: no surrogate is cut in half.
  return [...text].slice(0, max).join('');
}

function readText(value: unknown, options: { required?: boolean; max?: number }): string | null {
  if (value === null || value === undefined || value === '') {
    if (options.required) throw new FieldError('is missing');
    return null;
  }
  const text = typeof value === 'number' && Number.isFinite(value) ? String(value) : value;
  if (typeof text !== 'string') throw new FieldError(`expected text, got ${describe(value)}`);
  const max = options.max ?? MAX_COLUMN_TEXT;
  if (text.length > max) throw new FieldError(`is ${text.length} characters long, more than the ${max} allowed`);
  return text;
}

function readWholeNumber(value: unknown): string | null {
  if (value === null || value === undefined || value === '') return null;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
  if (typeof value === 'string' && /^-?\d{1,15}$/.test(value)) return value;
  throw new FieldError(`expected a whole number, got ${describe(value)}`);
}

function readLocalDate(value: unknown, zone: string): string | null {
  return present(value) ? parseLocalDateTime(asString(value), zone) : null;
}

function readIsoDate(value: unknown, defaultZone: string): string | null {
  return present(value) ? parseIsoDateTime(asString(value), defaultZone) : null;
}

function readOneOf<T extends string | number>(value: unknown, allowed: readonly T[]): T | undefined {
  if (value === null || value === undefined) return undefined;
  if (!allowed.includes(value as T))
    throw new FieldError(`expected one of ${allowed.join(', ')}, got ${describe(value)}`);
  return value as T;
}

function present(value: unknown): boolean {
  return value !== null && value !== undefined && value !== '';
}

function asString(value: unknown): string {
  if (typeof value !== 'string') throw new FieldError(`expected a date-time text, got ${describe(value)}`);
  return value;
}
