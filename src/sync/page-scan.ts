/**
 * Plain page-number paging for full scans. Rows deleted while we page can pull an unread row onto a page
 * already read; the full scan's deletion check re-reads every key it did not see before marking anything
 * deleted, so such a row is found (and refreshed) rather than lost.
 */
import type { Json } from '../types.ts';

export interface PageProgress {
  page: number;
  [key: string]: Json;
}

export async function* pageScan(options: {
  fetch(page: number, rows: number): Promise<unknown[]>;
  rows: number;
  start: PageProgress;
}): AsyncGenerator<{ records: unknown[]; progress: PageProgress }> {
  // Only an empty page ends the scan: a short page may be a server's mistake, and a full scan that stops
  // early would take the rest for deleted.
  for (let page = options.start.page; ; page++) {
    const records = await options.fetch(page, options.rows);
    yield { records, progress: { page: page + 1 } };
    if (records.length === 0) return;
  }
}
