import type { Logger } from '../logger.ts';
import { writePage } from '../db/write-page.ts';
import type { RejectedRow, RunCounters, StreamDefinition, VoucherRow } from '../types.ts';
import type { Tx } from './ledger.ts';

/** Validates and maps a page's raw records: the valid rows, and the rejected ones with their reasons. */
export function mapPage<Client>(stream: StreamDefinition<Client>, records: unknown[]): MappedPage {
  const rows: VoucherRow[] = [];
  const rejects: RejectedRow[] = [];
  for (const raw of records) {
    const result = stream.map(raw);
    if (result.ok) rows.push(result.row);
    else rejects.push(result.reject);
  }
  return { rows, rejects, fetched: records.length };
}

/** A page as mapPage returns it: what it holds, and how many raw records it came from. */
export interface MappedPage {
  rows: VoucherRow[];
  rejects: RejectedRow[];
  fetched: number;
}

export interface CommitContext {
  source: string;
  runId: bigint;
  scanId?: bigint;
  logger: Logger;
}

/**
 * Writes a mapped page (one set-based statement for the rows, one for the rejects) inside the caller's
 * transaction, adding what happened to `counters`. The caller commits its checkpoint in the same
 * transaction, and maps the page before opening it, so that the transaction is held only for the writes.
 */
export async function commitPage<Client>(
  tx: Tx,
  stream: StreamDefinition<Client>,
  page: MappedPage,
  counters: RunCounters,
  context: CommitContext,
): Promise<{ rows: VoucherRow[] }> {
  const { rows, rejects } = page;
  const written = await writePage(tx, { source: context.source, stream: stream.name, runId: context.runId, rows, rejects, scanId: context.scanId });
  counters.pages++;
  counters.fetched += page.fetched;
  counters.inserted += written.inserted;
  counters.updated += written.updated;
  counters.unchanged += written.unchanged;
  counters.rejected += written.rejected;
  for (const reject of rejects) context.logger.warn({ sourceId: reject.sourceId, reason: reject.reason }, 'record rejected');
  return { rows };
}
