import type { VoucherRow } from '../types.ts';

/**
 * Why a mapped row cannot be stored as it is, or null when it fits the `vouchers` columns.
 *
 * The page is written by one statement, so one value PostgreSQL refuses (an amount numeric cannot read,
 * a date without a zone) would fail the whole page, and the stream would stop on it at every retry.
 * Checking here turns such a row into a rejected record and lets the page through. Texts PostgreSQL cannot
 * hold (NUL, lone surrogates) are found by writePage (see src/db/unstorable.ts), and anything else it refuses
 * by bisecting the page.
 */
export function checkVoucherRow(row: VoucherRow): string | null {
  if (typeof row.sourceId !== 'string' || row.sourceId === '') return 'sourceId is empty';
  if ([...row.sourceId].length > 255) return 'sourceId is longer than 255 characters';
  for (const field of ['code', 'customerId', 'voucherType', 'storeId', 'rewardId', 'rewardName'] as const) {
    const value = row[field];
    if (value !== null && value !== undefined && (typeof value !== 'string' || [...value].length > 255))
      return `${field} is not a text of at most 255 characters`;
  }
  if (row.description !== null && row.description !== undefined && typeof row.description !== 'string')
    return 'description is not a text';
  if (!STATUSES.has(row.status)) return `status ${JSON.stringify(row.status)} is not active, inactive or deleted`;
  if (typeof row.isDeleted !== 'boolean') return 'isDeleted is not a boolean';
  for (const field of ['amount', 'redeemedAmount'] as const) {
    const value = row[field];
    if (value !== null && !fitsNumeric(value))
      return `${field} ${describeText(value)} is not a decimal PostgreSQL's numeric can hold`;
  }
  for (const field of DATE_FIELDS) {
    const value = row[field];
    if (value !== null && !isZonedIsoDate(value))
      return `${field} ${JSON.stringify(value)} is not an ISO date-time with a zone`;
  }
  return null;
}

const STATUSES = new Set<unknown>(['active', 'inactive', 'deleted']);

const DATE_FIELDS = ['validFrom', 'validTo', 'appliedAt', 'sourceCreatedAt', 'sourceModifiedAt'] as const;

// What numeric_in reads (the forms parseAmount returns: "12.50", "-3", String(n) such as "1e+21"), within
// its limits: an exponent of at most ±1000, 131072 digits before the point and 16383 after it.
const DECIMAL = /^[+-]?(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d{1,4}))?$/;

function fitsNumeric(value: unknown): boolean {
  const match = typeof value === 'string' ? DECIMAL.exec(value) : null;
  if (!match) return false;
  const [, whole = '', fraction = '', exponentText = '0'] = match;
  const exponent = Number(exponentText);
  if (whole === '' && fraction === '') return false;
  const wholeDigits = whole.replace(/^0+/, '').length + exponent;
  const fractionDigits = fraction.length - exponent;
  return Math.abs(exponent) <= 1000 && wholeDigits <= 131_072 && fractionDigits <= 16_383;
}

const describeText = (value: unknown) =>
  typeof value === 'string' && value.length > 40 ? `"${value.slice(0, 40)}…"` : JSON.stringify(value);

// A zone is required: without one PostgreSQL would read the time in the session's time zone.
const ISO_ZONED = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:Z|[+-](\d{2}):?(\d{2}))$/;

// Hand-written because Date.parse is lenient where PostgreSQL is not (it accepts February 30 and year 0).
function isZonedIsoDate(value: unknown): boolean {
  const match = typeof value === 'string' ? ISO_ZONED.exec(value) : null;
  if (!match) return false;
  const [year, month, day, hour, minute, second = 0, offsetHours = 0, offsetMinutes = 0] = match
    .slice(1)
    .map((part) => (part === undefined ? undefined : Number(part)));
  if (year === undefined || month === undefined || day === undefined || hour === undefined || minute === undefined)
    return false;
  const lastDay = new Date(Date.UTC(year, month, 0)).getUTCDate();
  return (
    year >= 1 &&
    month >= 1 &&
    month <= 12 &&
    day >= 1 &&
    day <= lastDay &&
    hour <= 23 &&
    minute <= 59 &&
    second <= 59 &&
    offsetHours <= 15 &&
    offsetMinutes <= 59
  );
}
