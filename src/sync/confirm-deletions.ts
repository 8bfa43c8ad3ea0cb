/**
 * Deletion confirmation after a full scan: vouchers we hold that the scan did not see are re-read one by
 * one (up to the source's confirmation budget). Those found are refreshed; those gone are marked deleted.
 * Candidates beyond the budget wait for the next full scan rather than being deleted on a single miss.
 */
import type { Db } from '../db/client.ts';
import type { ScanState } from '../db/stream-state.ts';
import { listUnseen, markVanished } from '../db/vanished.ts';
import { writePage } from '../db/write-page.ts';
import type { Logger } from '../logger.ts';
import { addCounters, type CallContext, type RunCounters, type StreamDefinition } from '../types.ts';
import { mapPage } from './commit-page.ts';

export interface ConfirmDeletionsOptions<Client> {
  source: string;
  stream: StreamDefinition<Client>;
  client: Client;
  db: Db;
  runId: bigint;
  /** The completed full scan. */
  scan: ScanState;
  /** Look-ups this run may spend; a stream without `lookup` marks every candidate deleted. */
  confirmMax: number;
  call: CallContext;
  /** The run's counters: the look-ups' writes are added to them. */
  counters: RunCounters;
  logger: Logger;
}

/** @returns how many vouchers were marked deleted. */
export async function confirmDeletions<Client>(options: ConfirmDeletionsOptions<Client>): Promise<number> {
  const { db, source, stream, runId, logger } = options;
  const scanId = BigInt(options.scan.scanId);
  const limit = stream.lookup ? options.confirmMax : 100_000;
  const candidates = await listUnseen(db, {
    source,
    scanId,
    scanStartedAt: new Date(options.scan.startedAt),
    limit: limit + 1,
  });
  const checked = candidates.slice(0, limit);
  if (candidates.length > limit)
    logger.warn(
      { confirmMax: limit },
      'more vouchers are missing than this run may confirm; the rest wait for the next full scan',
    );
  if (checked.length === 0) return 0;
  let gone = checked;
  if (stream.lookup) {
    const found = await stream.lookup(options.client, checked, options.call);
    const { rows, rejects } = mapPage(stream, found);
    const alive = new Set([
      ...rows.map((r) => r.sourceId),
      ...rejects.flatMap((r) => (r.sourceId ? [r.sourceId] : [])),
    ]);
    const { updated, unchanged, rejected } = await writePage(db, {
      source,
      stream: stream.name,
      runId,
      rows,
      rejects,
      scanId,
    });
    addCounters(options.counters, { updated, unchanged, rejected });
    gone = checked.filter((key) => !alive.has(key));
  }
  const deleted = await markVanished(db, { source, scanId, sourceIds: gone, runId });
  if (deleted > 0) logger.info({ deleted }, 'marked vouchers that vanished from the source as deleted');
  return deleted;
}
