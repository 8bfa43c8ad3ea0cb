/**
 * Cin7's `where` parameter is a free-form clause. We never put outside text into it: only a fixed field
 * name and a date we formatted ourselves, checked against a strict pattern before it is used.
 */
const UTC_SECONDS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

/** `CreatedDate>='2021-01-01T00:00:00Z'` for a UTC instant given as an ISO string of whole seconds. */
export function createdSince(isoUtc: string): string {
  if (!UTC_SECONDS.test(isoUtc)) throw new Error(`refusing to build a where clause from ${JSON.stringify(isoUtc)}`);
  return `CreatedDate>='${isoUtc}'`;
}
