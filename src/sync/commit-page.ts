import type { Tx } from '../db/client.ts';
import type { Logger } from '../logger.ts';
import { writePage } from '../db/write-page.ts';
import {
  addCounters,
  type MapResult,
  type RejectedRow,
  type RunCounters,
  type StreamDefinition,
  type VoucherRow,
} from '../types.ts';

/**
 * How far past the engine's clock a source's modification or cursor time may be and still be believed.
 * Servers' clocks agree within seconds; an hour also absorbs a daylight-saving rule one side applies and the
 * other does not. A later time is a rejected record: stored, it would make every real change look older
 * (newer-wins) and, as a watermark, make incremental scans stop above everything real.
 */
export const FUTURE_TOLERANCE_MS = 60 * 60_000;

/**
 * Validates and maps a page's raw records: the valid rows, and the rejected ones with their reasons. A mapper
 * that throws on a record rejects that record, not the page.
 * @param now the engine's clock when the page is mapped; without it, times from the future are not checked.
 */
export function mapPage<Client>(stream: StreamDefinition<Client>, records: unknown[], now?: Date): MappedPage {
  const rows: VoucherRow[] = [];
  const rejects: RejectedRow[] = [];
  const implausibleAfter = now === undefined ? undefined : new Date(now.getTime() + FUTURE_TOLERANCE_MS);
  for (const raw of records) {
    const result = mapSafely(stream, raw);
    const late = result.ok && implausibleAfter ? fromTheFuture(result.row, stream.cursorField, implausibleAfter) : null;
    if (!result.ok) rejects.push(result.reject);
    else if (late !== null) rejects.push({ sourceId: result.row.sourceId || null, reason: late, raw });
    else rows.push(result.row);
  }
  return { rows, rejects, fetched: records.length, implausibleAfter };
}

function mapSafely<Client>(stream: StreamDefinition<Client>, raw: unknown): MapResult {
  try {
    return stream.map(raw);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return {
      ok: false,
      reject: { sourceId: null, reason: `the record could not be mapped: ${message.slice(0, 300)}`, raw },
    };
  }
}

/** Why a row's modification or cursor time is not to be believed, or null. */
function fromTheFuture(
  row: VoucherRow,
  cursorField: 'sourceModifiedAt' | 'sourceCreatedAt',
  after: Date,
): string | null {
  for (const field of new Set(['sourceModifiedAt', cursorField] as const)) {
    const value = row[field];
    if (value !== null && Date.parse(value) > after.getTime()) {
      return `${field} ${value} is more than ${FUTURE_TOLERANCE_MS / 60_000} minutes after the time of the sync (${new Date(after.getTime() - FUTURE_TOLERANCE_MS).toISOString()}): a time from the future is not believed`;
    }
  }
  return null;
}

/** A page as mapPage returns it: what it holds, and how many raw records it came from. */
export interface MappedPage {
  rows: VoucherRow[];
  rejects: RejectedRow[];
  fetched: number;
  /** A stored time later than this is not believed (see writePage); undefined when mapped without a clock. */
  implausibleAfter?: Date;
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
  const written = await writePage(tx, {
    source: context.source,
    stream: stream.name,
    runId: context.runId,
    rows,
    rejects,
    scanId: context.scanId,
    implausibleAfter: page.implausibleAfter,
  });
  addCounters(counters, { pages: 1, fetched: page.fetched, ...written });
  for (const reject of rejects)
    context.logger.warn({ sourceId: reject.sourceId, reason: reject.reason }, 'record rejected');
  return { rows };
}
