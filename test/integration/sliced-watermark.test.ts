/**
 * Full scans read in slices whose slices finish in an order other than the list's, while vouchers change.
 *
 * CareCloud's slices are ranges of offsets in `last_change ASC` order; a voucher that changes moves to the
 * end of the list, and every row after its old place moves up one. Once the open-ended last slice has
 * finished, nothing in the scan is bound to read what moves to the end, and enough moves slide rows from
 * one slice's range into another's that was already read.
 */
import { isDeepStrictEqual } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isServiceCode } from '../../src/fake/carecloud-data.ts';
import { inlineDispatcher, type SliceDispatcher } from '../../src/sync/run-slice.ts';
import { runSync } from '../../src/sync/run-sync.ts';
import { createHarness, type Harness } from '../helpers/sync-harness.ts';

let h: Harness;
/** What the list serves, and the table must hold: every voucher but the service ones. */
const listed = () => h.careCloud.store.all().filter((v) => !isServiceCode(v.code));
/** The fake's clock: changes made during the scan are stamped a minute and two minutes ahead. */
let sourceNow = Date.now();
const PAGE = 20;
const OVERLAP = 2;

beforeEach(async () => {
  sourceNow = Date.now();
  h = await createHarness({
    careCloud: { now: () => sourceNow },
    env: { CARECLOUD_PAGE_SIZE: String(PAGE), CARECLOUD_PAGE_OVERLAP: String(OVERLAP), CARECLOUD_SLICE_PAGES: '2', CARECLOUD_LOOKBACK: '1s' },
  });
});
afterEach(async () => {
  await h.close();
});

describe('a sliced scan and the watermark', () => {
  it('an incremental run after a sliced full scan reads what changed during it, in ranges the finished slices had passed', async () => {
    await h.sync('carecloud');
    const runtime = h.runtime('carecloud');
    const stream = runtime.streams[0]!;
    const inline = inlineDispatcher({ stream, client: runtime.client, db: h.db, logger: h.logger, lookbackMs: runtime.settings.lookbackMs });
    const inserted: string[] = [];
    let readFirst: 'last' | undefined;
    // Workers can finish slices in any order: here the open-ended last one first, then every other but
    // the one before the last. Then vouchers change, and that slice is read.
    const slices: SliceDispatcher = {
      async run(tasks, onDone, signal) {
        expect(tasks.length).toBeGreaterThan(4);
        const last = tasks.at(-1)!;
        const penultimate = tasks.at(-2)!;
        await inline.run([last, ...tasks.slice(0, -2)], onDone, signal);
        readFirst = 'last';
        // A minute later, new vouchers (more than a page: the incremental run writes the whole page on
        // which it passes its threshold); another minute later, the oldest vouchers change, enough of them
        // that the new vouchers end up just below where the remaining slice starts reading, and the
        // changed ones inside it.
        const readsFrom = (penultimate.slice as { start: number }).start - OVERLAP;
        const total = listed().length;
        sourceNow += 60_000;
        for (let i = 0; i < PAGE + 10; i++) inserted.push(h.careCloud.store.insert().voucher_id);
        sourceNow += 60_000;
        const moved = total + inserted.length - readsFrom + 2;
        const oldest = listed().sort((a, b) => a.last_change.localeCompare(b.last_change));
        for (const voucher of oldest.slice(0, moved)) h.careCloud.store.update(voucher.voucher_id);
        await inline.run([penultimate], onDone, signal);
      },
    };
    const full = await runSync({ source: 'carecloud', stream, mode: 'full', client: runtime.client, db: h.db, logger: h.logger, settings: runtime.settings, slices });
    expect(readFirst).toBe('last');
    // The scan read vouchers changed after the new ones were added. Its watermark stays at its start all
    // the same, so the next incremental run reads everything changed during the scan.
    const started = await h.db.syncRun.findUniqueOrThrow({ where: { id: full.runId }, select: { startedAt: true } });
    expect(full.watermarkAfter!.getTime()).toBeLessThanOrEqual(started.startedAt.getTime());

    await h.sync('carecloud');
    expect(await h.db.voucher.count({ where: { sourceId: { in: inserted } } })).toBe(inserted.length);
    const rows = new Map((await h.vouchers('carecloud')).map((r) => [r.sourceId, r.raw]));
    const expected = listed();
    expect(rows.size).toBe(expected.length);
    expect(expected.filter((v) => !isDeepStrictEqual(rows.get(v.voucher_id), v)).map((v) => v.voucher_id)).toEqual([]);
  });
});
