/**
 * What is known of the largest page a stream's source accepts, when its page size is found at run time
 * (src/sync/page-size.ts): two bounds in `sync_state`, shared by every worker, process and later run. Each write moves
 * one bound the way the engine's own rule does (afterAccepted, afterRefused), in SQL, so that two workers learning at
 * once cannot write back what the other has just disproved. The row may not exist yet (a customer run on a new
 * database): it is made.
 */
import type { PageSizeBounds } from '../sync/page-size.ts';
import type { Db } from './client.ts';

export interface StoredPageSize extends PageSizeBounds {
  /** The maximum the last refusal named (see nextPageSize); null when it named none. */
  hint: number | null;
  checkedAt: Date | null;
}

export async function readPageSize(db: Db, source: string, stream: string): Promise<StoredPageSize> {
  const row = await db.syncState.findUnique({
    where: { source_stream: { source, stream } },
    select: { pageSizeAccepted: true, pageSizeRefused: true, pageSizeHint: true, pageSizeCheckedAt: true },
  });
  return {
    accepted: row?.pageSizeAccepted ?? null,
    refused: row?.pageSizeRefused ?? null,
    hint: row?.pageSizeHint ?? null,
    checkedAt: row?.pageSizeCheckedAt ?? null,
  };
}

/** `size` was accepted: it raises the largest accepted, and drops a refusal it disproves (the source raised its maximum). */
export async function recordPageSizeAccepted(db: Db, source: string, stream: string, size: number, now: Date) {
  await db.$executeRaw`
    INSERT INTO sync_state (source, stream, page_size_accepted, page_size_checked_at)
    VALUES (${source}, ${stream}, ${size}, ${now})
    ON CONFLICT (source, stream) DO UPDATE SET
      page_size_accepted = GREATEST(sync_state.page_size_accepted, EXCLUDED.page_size_accepted),
      page_size_refused = CASE WHEN sync_state.page_size_refused <= EXCLUDED.page_size_accepted THEN NULL
                               ELSE sync_state.page_size_refused END,
      page_size_checked_at = EXCLUDED.page_size_checked_at`;
}

/**
 * `size` was refused: it lowers the smallest refused, and drops an acceptance it disproves (the source lowered it).
 * `hint`, the maximum the refusal named, replaces the one kept.
 */
export async function recordPageSizeRefused(
  db: Db,
  source: string,
  stream: string,
  refusal: { size: number; hint: number | null },
  now: Date,
) {
  const { size, hint } = refusal;
  await db.$executeRaw`
    INSERT INTO sync_state (source, stream, page_size_refused, page_size_hint, page_size_checked_at)
    VALUES (${source}, ${stream}, ${size}, ${hint}, ${now})
    ON CONFLICT (source, stream) DO UPDATE SET
      page_size_refused = LEAST(sync_state.page_size_refused, EXCLUDED.page_size_refused),
      page_size_hint = EXCLUDED.page_size_hint,
      page_size_accepted = CASE WHEN sync_state.page_size_accepted >= EXCLUDED.page_size_refused THEN NULL
                                ELSE sync_state.page_size_accepted END,
      page_size_checked_at = EXCLUDED.page_size_checked_at`;
}
