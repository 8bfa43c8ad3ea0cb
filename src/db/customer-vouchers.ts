/**
 * A customer run's reads of the vouchers table (src/sync/customer-sync.ts): which of a customer's stored vouchers
 * are candidates for deletion once the customer's list has been read.
 */
import type { Db, Tx } from './client.ts';

export interface StoredCustomerVouchersInput {
  source: string;
  customerId: string;
  /** Vouchers first stored after this instant (by a main run going beside) may be newer than the list we read. */
  storedBefore: Date;
}

/**
 * The source_ids of a customer's live vouchers stored before `storedBefore`, in source_id order (a customer holds a
 * few hundred at most). No index on customer_id: one scan of the table per customer run, rare and run by hand, costs
 * less than an index every page write would have to keep up.
 */
export async function storedCustomerVouchers(db: Db | Tx, input: StoredCustomerVouchersInput): Promise<string[]> {
  const rows = await db.voucher.findMany({
    where: {
      source: input.source,
      customerId: input.customerId,
      isDeleted: false,
      firstSeenAt: { lt: input.storedBefore },
    },
    select: { sourceId: true },
    orderBy: { sourceId: 'asc' },
  });
  return rows.map((r) => r.sourceId);
}
