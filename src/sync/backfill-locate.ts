/**
 * Where a range of cursors lies in a list sorted by cursor that offers no filter on it (CareCloud's `GET /vouchers`
 * sorted by `last_change`): a binary search by offset, one request of one record a step, so a backfill of a week
 * in a million vouchers costs about 2 × 20 requests to find instead of the 10,000 it would take to read up to it.
 */

/**
 * The first offset in [low, high) whose record's cursor is at or after `cursor` (`high` when none is). `probe(offset)`
 * is the cursor (epoch ms) of the record at that offset: null when unreadable (such records sort first, like
 * CareCloud's `0000-00-00 00:00:00`), undefined past the end (the list shrank since it was counted).
 */
export async function firstOffsetAtOrAfter(
  probe: (offset: number) => Promise<number | null | undefined>,
  cursor: number,
  low: number,
  high: number,
): Promise<number> {
  let lo = low;
  let hi = high;
  while (lo < hi) {
    const mid = lo + Math.floor((hi - lo) / 2);
    const at = await probe(mid);
    if (at === undefined || (at !== null && at >= cursor)) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}
