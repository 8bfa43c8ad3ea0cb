/**
 * Cin7's `where` parameter is a free-form clause. We never put outside text into it: only a fixed field
 * name and a date we formatted ourselves, checked against a strict pattern before it is used.
 */
const UTC_SECONDS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

/**
 * `CreatedDate>='2021-01-01T00:00:00Z' AND CreatedDate<'2021-02-01T00:00:00Z'`: the vouchers created in
 * [from, before), each bound a UTC instant as an ISO string of whole seconds, or null for none. Undefined
 * when both are null (no where clause at all).
 */
export function createdWithin(from: string | null, before: string | null): string | undefined {
  const conditions: string[] = [];
  if (from !== null) conditions.push(`CreatedDate>='${checked(from)}'`);
  if (before !== null) conditions.push(`CreatedDate<'${checked(before)}'`);
  return conditions.length > 0 ? conditions.join(' AND ') : undefined;
}

/** A real UTC instant written as `2021-01-01T00:00:00Z` (whole seconds), the only form put into a where clause. */
export function isUtcSecond(value: unknown): value is string {
  return typeof value === 'string' && UTC_SECONDS.test(value) && isRealInstant(value);
}

function checked(isoUtc: string): string {
  if (!isUtcSecond(isoUtc)) throw new Error(`refusing to build a where clause from ${JSON.stringify(isoUtc)}`);
  return isoUtc;
}

/** Rejects what the pattern lets through but no calendar has, such as the 30th of February. */
const isRealInstant = (isoUtc: string) => {
  const ms = Date.parse(isoUtc);
  return Number.isFinite(ms) && new Date(ms).toISOString() === isoUtc.replace('Z', '.000Z');
};
