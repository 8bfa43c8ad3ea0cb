/**
 * The status report's `pageSize`: what a list request of the source asks for, and whether that number was configured
 * or found at run time (src/sync/page-size.ts), with what is known of it.
 */
import type { StreamStatusRow } from '../db/status-reads.ts';
import { isSettled, nextPageSize } from '../sync/page-size.ts';
import type { PageSizeStatus } from './types.ts';

export function pageSizeStatus(input: {
  /** The source's configured records a request (its limits' recordsPerRequest). */
  configured: number | undefined;
  /** The stream whose page size is found at run time, with its ceiling; undefined when none is. */
  found: { stream: string; ceiling: number } | undefined;
  rows: StreamStatusRow[];
}): PageSizeStatus | null {
  const { configured, found } = input;
  if (!found) {
    if (configured === undefined) return null;
    const none = { accepted: null, refused: null, ceiling: null, checkedAt: null };
    return { size: configured, setting: 'configured', found: false, ...none };
  }
  const row = input.rows.find((r) => r.stream === found.stream);
  const bounds = { accepted: row?.pageSizeAccepted ?? null, refused: row?.pageSizeRefused ?? null };
  return {
    size: Math.max(1, nextPageSize(bounds, found.ceiling)),
    setting: 'auto',
    found: isSettled(bounds, found.ceiling),
    ...bounds,
    ceiling: found.ceiling,
    checkedAt: row?.pageSizeCheckedAt?.toISOString() ?? null,
  };
}
