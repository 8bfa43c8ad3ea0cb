/**
 * Plain page-number paging for full scans. Rows deleted while we page can pull an unread row onto a page
 * already read; the full scan's deletion check re-reads every key it did not see before marking anything
 * deleted, so such a row is found (and refreshed) rather than lost.
 *
 * A ProgressGuard stops a scan whose pages bring nothing new (a server that ignores `page`). An answer too
 * large to hold makes the scan ask for half the rows; the page number is converted so that the next page
 * starts at or before the first record not yet read (a few records are read twice, none skipped), and the
 * size is kept in the progress for the rest of the scan.
 */
import type { Json } from '../types.ts';
import { ProgressGuard } from './progress-guard.ts';
import { smallerPageSize } from './smaller-pages.ts';

export type PageProgress = {
  /** Next page to read (1-based), counted in pages of `rows`. */
  page: number;
  /** The page size the page number counts in; absent = the configured one. */
  rows?: number;
  [key: string]: Json | undefined;
};

export interface PageScanOptions {
  fetch(page: number, rows: number): Promise<unknown[]>;
  rows: number;
  start: PageProgress;
  keyOf(record: unknown): string | undefined;
  /** The source as named in errors. @default 'the server' */
  server?: string;
}

/** The page, counted in pages of `to` rows, that starts at or before page `page` of `from` rows. */
export const convertPage = (page: number, from: number, to: number) => Math.floor(((page - 1) * from) / to) + 1;

export async function* pageScan(
  options: PageScanOptions,
): AsyncGenerator<{ records: unknown[]; progress: PageProgress & { [key: string]: Json } }> {
  const saved = options.start.rows ?? options.rows;
  let rows = Math.max(1, Math.min(options.rows, saved));
  let page = convertPage(options.start.page, saved, rows);
  const guard = new ProgressGuard({ server: options.server ?? 'the server', parameter: 'page', step: rows });
  // Only an empty page ends the scan: a short page may be a server's mistake, and a full scan that stops
  // early would take the rest for deleted.
  for (;;) {
    let records: unknown[];
    guard.request(`page ${page}`);
    try {
      records = await options.fetch(page, rows);
    } catch (error) {
      const smaller = smallerPageSize(error, rows, `${options.server ?? 'the server'} at page ${page}`);
      page = convertPage(page, rows, smaller);
      rows = smaller;
      guard.update({ step: rows });
      continue;
    }
    guard.page(records.map(options.keyOf), `page ${page}`);
    page++;
    yield { records, progress: rows < options.rows ? { page, rows } : { page } };
    if (records.length === 0) return;
  }
}
