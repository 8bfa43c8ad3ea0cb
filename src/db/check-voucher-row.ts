import type { VoucherRow } from '../types.ts';

/**
 * Why a mapped row cannot be stored as it is, or null when it fits the `vouchers` columns.
 *
 * The page is written by one statement, so one value PostgreSQL refuses (an amount beyond numeric(18,4),
 * a date without a zone, a NUL character in jsonb) would fail the whole page, and the stream would stop
 * on it at every retry. Checking here turns such a row into a rejected record and lets the page through.
 * @param rowJson the row as JSON text, already serialized by the caller.
 */
export function checkVoucherRow(row: VoucherRow, rowJson: string): string | null {
  if (typeof row.sourceId !== 'string' || row.sourceId === '') return 'sourceId is empty';
  if ([...row.sourceId].length > 255) return 'sourceId is longer than 255 characters';
  for (const field of ['code', 'customerId'] as const) {
    const value = row[field];
    if (value !== null && (typeof value !== 'string' || [...value].length > 255)) return `${field} is not a text of at most 255 characters`;
  }
  if (!STATUSES.has(row.status)) return `status ${JSON.stringify(row.status)} is not active, inactive or deleted`;
  if (typeof row.isDeleted !== 'boolean') return 'isDeleted is not a boolean';
  for (const field of ['amount', 'redeemedAmount'] as const) {
    const value = row[field];
    if (value !== null && !fitsNumeric(value)) return `${field} ${JSON.stringify(value)} is not a decimal that fits numeric(18,4)`;
  }
  for (const field of DATE_FIELDS) {
    const value = row[field];
    if (value !== null && !isZonedIsoDate(value)) return `${field} ${JSON.stringify(value)} is not an ISO date-time with a zone`;
  }
  // PostgreSQL text and jsonb cannot hold U+0000. (An escaped backslash followed by "u0000" matches too:
  // rare, and such a row is only set aside, not lost.)
  if (rowJson.includes('\\u0000')) return 'contains a NUL character, which PostgreSQL cannot store';
  return null;
}

const STATUSES = new Set<unknown>(['active', 'inactive', 'deleted']);

const DATE_FIELDS = ['validFrom', 'validTo', 'appliedAt', 'sourceCreatedAt', 'sourceModifiedAt'] as const;

// numeric(18,4): at most 14 digits before the point. Extra decimals are rounded by PostgreSQL, not refused,
// except where rounding would carry into a 15th digit (99999999999999.99995).
const DECIMAL = /^[+-]?(?=\.?\d)0*(?:\d{0,13}(?:\.\d*)?|\d{14}(?:\.\d{0,4})?)$/;

function fitsNumeric(value: unknown): boolean {
  return typeof value === 'string' && DECIMAL.test(value);
}

// A zone is required: without one PostgreSQL would read the time in the session's time zone.
const ISO_ZONED = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:Z|[+-](\d{2}):?(\d{2}))$/;

// Hand-written because Date.parse is lenient where PostgreSQL is not (it accepts February 30 and year 0).
function isZonedIsoDate(value: unknown): boolean {
  const match = typeof value === 'string' ? ISO_ZONED.exec(value) : null;
  if (!match) return false;
  const [year, month, day, hour, minute, second = 0, offsetHours = 0, offsetMinutes = 0] = match
    .slice(1)
    .map((part) => (part === undefined ? undefined : Number(part)));
  if (year === undefined || month === undefined || day === undefined || hour === undefined || minute === undefined) return false;
  const lastDay = new Date(Date.UTC(year, month, 0)).getUTCDate();
  return year >= 1 && month >= 1 && month <= 12 && day >= 1 && day <= lastDay && hour <= 23 && minute <= 59 &&
    second <= 59 && offsetHours <= 15 && offsetMinutes <= 59;
}
