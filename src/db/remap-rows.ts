/**
 * When what a stream maps records with changes (CARECLOUD_TIMEZONE or CIN7_TIMEZONE corrected), the stored
 * rows' times were computed the old way. They are derivable from `raw`, so they are recomputed, before the
 * run reads anything: otherwise newer-wins would compare the new times with the old ones and drop every
 * change for as many hours as the zones differ.
 */
import type { Logger } from '../logger.ts';
import type { StreamDefinition, VoucherRow } from '../types.ts';
import { largeQueries, type Db, type Tx } from './client.ts';

/** Rows read and rewritten per statement. */
const BATCH = 2000;

/** The columns the mapping key can change. Status, amounts and deletion do not depend on a zone. */
const TIME_FIELDS = ['validFrom', 'validTo', 'appliedAt', 'sourceCreatedAt', 'sourceModifiedAt'] as const;

export interface RemapOptions<Client> {
  source: string;
  stream: StreamDefinition<Client>;
  logger: Logger;
  /** The engine's clock when the run starts: stamps the state's updatedAt. */
  now: Date;
}

/**
 * Compares the stream's mappingKey with the one its stored rows were mapped with (sync_state.mapping_key)
 * and, when they differ, in one transaction: recomputes the stored rows' times from raw with the stream's
 * own map, moves the watermark back by the largest amount any row's cursor moved back (a watermark that
 * only moves back makes the next run re-read, never skip), and drops saved progress (scans restart; their
 * plans and positions were made with the old times). A stream without a mappingKey, or a state without one
 * (a new stream, or rows written by a version that did not record it), just records the current key.
 * The caller must hold the source's lock.
 * @returns the number of rows whose times changed (0 when nothing was remapped).
 */
export async function remapIfMappingChanged<Client>(db: Db, options: RemapOptions<Client>): Promise<number> {
  const { source, stream, logger, now } = options;
  const key = stream.mappingKey;
  if (key === undefined) return 0;
  const where = { source_stream: { source, stream: stream.name } };
  const state = await db.syncState.upsert({
    where,
    create: { source, stream: stream.name, mappingKey: key },
    update: {},
  });
  if (state.mappingKey === key) return 0;
  if (state.mappingKey === null) {
    await db.syncState.update({ where, data: { mappingKey: key } });
    return 0;
  }
  const previous = state.mappingKey;
  const outcome = await db.$transaction(
    async (tx) => {
      // Locks the state: a run that did not hold the source lock would wait here, not remap twice.
      const [current] = await tx.$queryRaw<{ mapping_key: string | null; watermark: Date | null }[]>`
        SELECT mapping_key, watermark FROM sync_state WHERE source = ${source} AND stream = ${stream.name} FOR UPDATE`;
      if (current?.mapping_key !== previous) return null;
      const remapped = await remapRows(tx, source, stream);
      const shift = Math.min(0, remapped.smallestShiftMs ?? 0);
      const watermark = current.watermark === null ? null : new Date(current.watermark.getTime() + shift);
      const scans = await tx.$queryRaw<{ scan_id: string | null }[]>`
        SELECT value ->> 'scanId' AS scan_id FROM sync_state, jsonb_each(COALESCE(progress, '{}'::jsonb))
         WHERE source = ${source} AND stream = ${stream.name} AND jsonb_typeof(value) = 'object'`;
      const scanIds = scans.flatMap((s) => (s.scan_id !== null && /^\d+$/.test(s.scan_id) ? [BigInt(s.scan_id)] : []));
      if (scanIds.length > 0) await tx.scanSeen.deleteMany({ where: { scanId: { in: scanIds } } });
      await tx.syncState.update({ where, data: { mappingKey: key, watermark, progress: {}, updatedAt: now } });
      return { ...remapped, watermarkBefore: current.watermark, watermark, droppedScans: scanIds.length };
    },
    // One transaction, so that a crash halfway leaves the old key and the old times, and the next run starts over.
    { timeout: 60 * 60_000, maxWait: 60_000 },
  );
  if (outcome !== null) {
    logger.warn(
      {
        mappingBefore: previous,
        mapping: key,
        changed: outcome.changed,
        unmappable: outcome.unmappable,
        watermarkBefore: outcome.watermarkBefore,
        watermark: outcome.watermark,
        droppedScans: outcome.droppedScans,
      },
      'the mapping changed since the stored rows were written: their times were recomputed from raw, the watermark moved back by the largest shift, saved progress dropped',
    );
  }
  return outcome?.changed ?? 0;
}

interface Remapped {
  changed: number;
  /** Rows whose raw no longer maps (e.g. a local time that does not exist in the new zone): left as they are. */
  unmappable: number;
  /** The most negative (new − old) cursor change, in ms; null when no row has a cursor both ways. */
  smallestShiftMs: number | null;
}

type StoredTimes = { id: string; raw: unknown } & Record<(typeof SQL_COLUMNS)[number], Date | null>;

const SQL_COLUMNS = ['valid_from', 'valid_to', 'applied_at', 'source_created_at', 'source_modified_at'] as const;

/** Reads the source's rows in batches by id, maps their raw again, and rewrites the times that changed. */
async function remapRows<Client>(tx: Tx, source: string, stream: StreamDefinition<Client>): Promise<Remapped> {
  const query = await largeQueries(tx);
  const cursorColumn = stream.cursorField === 'sourceModifiedAt' ? 'source_modified_at' : 'source_created_at';
  const result: Remapped = { changed: 0, unmappable: 0, smallestShiftMs: null };
  for (let after = '0'; ;) {
    const batch = await query<StoredTimes>(
      `SELECT id::text, raw, ${SQL_COLUMNS.join(', ')} FROM vouchers WHERE source = $1 AND id > $2::bigint ORDER BY id LIMIT ${BATCH}`,
      [source, after],
    );
    if (batch.length === 0) return result;
    after = batch.at(-1)!.id;
    const updates: Record<string, string | null>[] = [];
    for (const stored of batch) {
      const mapped = stream.map(stored.raw);
      if (!mapped.ok) {
        result.unmappable++;
        continue;
      }
      const times = Object.fromEntries(TIME_FIELDS.map((field) => [field, mapped.row[field]])) as Pick<
        VoucherRow,
        (typeof TIME_FIELDS)[number]
      >;
      if (SQL_COLUMNS.every((column, i) => sameInstant(stored[column], times[TIME_FIELDS[i]!]))) continue;
      const before = stored[cursorColumn];
      const now = times[stream.cursorField];
      if (before !== null && now !== null) {
        const shift = Date.parse(now) - before.getTime();
        result.smallestShiftMs = result.smallestShiftMs === null ? shift : Math.min(result.smallestShiftMs, shift);
      }
      updates.push({ id: stored.id, ...times });
    }
    if (updates.length > 0) await query(UPDATE_TIMES, [JSON.stringify(updates)]);
    result.changed += updates.length;
  }
}

function sameInstant(stored: Date | null, mapped: string | null): boolean {
  return stored === null || mapped === null ? stored === mapped : stored.getTime() === Date.parse(mapped);
}

// $1 a JSON array of {id, validFrom, validTo, appliedAt, sourceCreatedAt, sourceModifiedAt}. The row changed
// here, so last_synced_at moves; raw and its hash do not change.
const UPDATE_TIMES = `
UPDATE vouchers AS v SET
       valid_from = r."validFrom", valid_to = r."validTo", applied_at = r."appliedAt",
       source_created_at = r."sourceCreatedAt", source_modified_at = r."sourceModifiedAt", last_synced_at = now()
  FROM jsonb_to_recordset($1::jsonb) AS r(id bigint, "validFrom" timestamptz, "validTo" timestamptz, "appliedAt" timestamptz,
       "sourceCreatedAt" timestamptz, "sourceModifiedAt" timestamptz)
 WHERE v.id = r.id`;
