/**
 * Planner statistics after a large write. Autovacuum analyzes `vouchers` once a tenth of it has changed, but only when
 * its daemon gets round to it, and while a first backfill runs the table grows faster than that: a backfill of 50,330
 * rows was left estimated at 19,408, and BI queries were planned for a table of less than half its size. So a run that
 * wrote many rows analyzes the table itself, after its last page (outside every page transaction: ANALYZE takes a lock
 * that lets writers on, and its sample read must not lengthen a page's transaction).
 */
import type { Logger } from '../logger.ts';
import type { Db } from './client.ts';

/** A run that wrote at least this many rows analyzes the table... */
export const ANALYZE_MIN_ROWS = 10_000;
/** ...and so does one that wrote at least this share of the rows the planner believes the table holds. */
export const ANALYZE_SHARE = 0.1;

/**
 * Runs ANALYZE on `vouchers` when `written` (rows inserted, updated or deleted by a run) is large: at least
 * ANALYZE_MIN_ROWS, or ANALYZE_SHARE of the planner's row estimate (a table never analyzed counts as empty). A failure
 * is logged, not thrown: the run that wrote the rows has succeeded, and autovacuum analyzes later anyway.
 * @returns whether the table was analyzed.
 */
export async function analyzeAfterLargeWrite(db: Db, written: number, logger: Logger): Promise<boolean> {
  if (written <= 0) return false;
  try {
    const [table] = await db.$queryRaw<{ estimate: number }[]>`
      SELECT reltuples::float8 AS estimate FROM pg_class WHERE oid = 'vouchers'::regclass`;
    // reltuples is -1 until the table is first analyzed or vacuumed.
    const estimate = Math.max(0, table?.estimate ?? 0);
    if (written < ANALYZE_MIN_ROWS && written < ANALYZE_SHARE * estimate) return false;
    await db.$executeRawUnsafe('ANALYZE vouchers');
    logger.info({ written, estimateBefore: estimate }, 'analyzed vouchers after a large write');
    return true;
  } catch (error) {
    logger.warn({ err: error, written }, 'could not analyze vouchers after a large write; autovacuum will');
    return false;
  }
}
