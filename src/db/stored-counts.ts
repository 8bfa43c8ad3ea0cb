/**
 * Counts of the vouchers we hold, for the dry runs of `backfill` and `reset` when a source cannot say cheaply how many
 * records it has (Cin7 sends no total): what a re-read would find, as far as our table knows. Deleted rows are left
 * out, since the source no longer returns them. Both counts walk an index (source and status; source_created_at).
 */
import type { BackfillRange } from '../types.ts';
import type { Db } from './client.ts';

/** Live vouchers of a source, optionally only those whose cursor column lies in `range` ([from, to)). */
export function countStoredVouchers(
  db: Db,
  source: string,
  options: { range?: BackfillRange; cursorField?: 'sourceModifiedAt' | 'sourceCreatedAt' } = {},
): Promise<number> {
  const { range, cursorField = 'sourceCreatedAt' } = options;
  return db.voucher.count({
    where: {
      source,
      isDeleted: false,
      ...(range ? { [cursorField]: { gte: range.from, lt: range.to } } : {}),
    },
  });
}
