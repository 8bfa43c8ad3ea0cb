import type { Logger } from '../logger.ts';
import { writePage } from '../db/write-page.ts';
import type { RejectedRow, RunCounters, StreamDefinition, VoucherRow } from '../types.ts';
import type { Tx } from './ledger.ts';

/** Validates and maps a page's raw records: the valid rows, and the rejected ones with their reasons. */
export function mapPage<Client>(stream: StreamDefinition<Client>, records: unknown[]): { rows: VoucherRow[]; rejects: RejectedRow[] } {
  const rows: VoucherRow[] = [];
  const rejects: RejectedRow[] = [];
  for (const raw of records) {
    const result = stream.map(raw);
    if (result.ok) rows.push(result.row);
    else rejects.push(result.reject);
  }
  return { rows, rejects };
}

/**
 * Maps one page and writes it (one set-based statement for the rows, one for the rejects) inside the
 * caller's transaction, adding what happened to `counters`. The caller commits its checkpoint in the same
 * transaction.
 */
export async function commitPage<Client>(
  tx: Tx,
  stream: StreamDefinition<Client>,
  records: unknown[],
  counters: RunCounters,
  context: CommitContext,
): Promise<{ rows: VoucherRow[] }> {
  return commitMapped(tx, stream, { ...mapPage(stream, records), fetched: records.length }, counters, context);
}

export interface CommitContext {
  source: string;
  runId: bigint;
  scanId?: bigint;
  logger: Logger;
}

/** commitPage for a page mapped beforehand (outside the transaction, so that it is held no longer than the write). */
export async function commitMapped<Client>(
  tx: Tx,
  stream: StreamDefinition<Client>,
  page: { rows: VoucherRow[]; rejects: RejectedRow[]; fetched: number },
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
