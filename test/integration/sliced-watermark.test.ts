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
import type { CareCloudClient } from '../../src/sources/carecloud/client.ts';
import { parseLocalDateTime } from '../../src/sources/parse.ts';
import { inlineDispatcher, type SliceDispatcher } from '../../src/sync/run-slice.ts';
import { runSync } from '../../src/sync/run-sync.ts';
import type { Clock } from '../../src/types.ts';
import { createHarness, type Harness } from '../helpers/sync-harness.ts';

let h: Harness;
const listRequests = () => h.careCloud.stats.byEndpoint['GET /vouchers'] ?? 0;
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
    env: {
      CARECLOUD_PAGE_SIZE: String(PAGE),
      CARECLOUD_PAGE_OVERLAP: String(OVERLAP),
      CARECLOUD_SLICE_PAGES: '2',
      CARECLOUD_LOOKBACK: '1s',
    },
  });
});
afterEach(async () => {
  await h.close();
});

/** Reads slices one after another, here and now, in the order the caller hands them over. */
function inlineSlices(): SliceDispatcher {
  const runtime = h.runtime('carecloud');
  return inlineDispatcher({
    stream: runtime.streams[0]!,
    client: runtime.client,
    db: h.db,
    logger: h.logger,
    lookbackMs: runtime.settings.lookbackMs,
  });
}

/** One full run of CareCloud vouchers, its slices read by `slices`. */
function fullRun(slices: SliceDispatcher, clock?: Clock) {
  const runtime = h.runtime('carecloud');
  return runSync({
    source: 'carecloud',
    stream: runtime.streams[0]!,
    mode: 'full',
    client: runtime.client,
    db: h.db,
    logger: h.logger,
    settings: runtime.settings,
    slices,
    clock,
  });
}

describe('a sliced scan and the watermark', () => {
  it('an incremental run after a sliced full scan reads what changed during it, in ranges the finished slices had passed', async () => {
    await h.sync('carecloud');
    const inline = inlineSlices();
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
    const full = await fullRun(slices);
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

  it('a full scan reads every voucher that existed when it started, though the rows of a slice slid into a range read before', async () => {
    const t0 = sourceNow;
    const at = (seconds: number) => ({ now: () => new Date(t0 + seconds * 1000) });
    await h.sync('carecloud', 'incremental', { clock: at(10) });
    // New vouchers the incremental runs have not read yet, when the full scan starts: at the end of the list.
    sourceNow = t0 + 20_000;
    const inserted: string[] = [];
    for (let i = 0; i < PAGE + 10; i++) inserted.push(h.careCloud.store.insert().voucher_id);
    const inline = inlineSlices();
    // Every slice but the last is read; then the oldest vouchers change, enough of them that the new ones
    // slide from the last slice's range down into the one before, already read; then the last slice.
    const slices: SliceDispatcher = {
      async run(tasks, onDone, signal) {
        const last = tasks.at(-1)!;
        await inline.run(tasks.slice(0, -1), onDone, signal);
        const readsFrom = (last.slice as { start: number }).start - OVERLAP;
        const moved = listed().length - readsFrom + 2;
        sourceNow = t0 + 61_000;
        const oldest = listed().sort((a, b) => a.last_change.localeCompare(b.last_change));
        for (const voucher of oldest.slice(0, moved)) h.careCloud.store.update(voucher.voucher_id);
        await inline.run([last], onDone, signal);
      },
    };
    await fullRun(slices, at(60));
    expect(await h.db.voucher.count({ where: { sourceId: { in: inserted } } })).toBe(inserted.length);
  });

  it('plans each slice with the records just before its start and the sort value at it, one request each, and refuses a slice it did not plan', async () => {
    const runtime = h.runtime('carecloud');
    const stream = runtime.streams[0]!;
    const before = listRequests();
    const context = {
      client: runtime.client,
      mode: 'full' as const,
      watermark: null,
      lookbackMs: 1000,
      now: new Date(),
      progress: null,
      call: {},
      logger: h.logger,
    };
    const plan = (await stream.planSlices!(context)) as {
      start: number;
      end: number | null;
      anchors: { key: string; at: number }[];
      startAt: number | null;
      endAt: number | null;
    }[];
    expect(listRequests() - before).toBe(plan.length);
    // The whole list in one request, in the API's own order.
    const { vouchers } = await (runtime.client as CareCloudClient).listVouchers(
      { count: 1000, offset: 0, sort_field: 'last_change', sort_direction: 'ASC' },
      {},
    );
    const list = vouchers as { voucher_id: string; last_change: string }[];
    const at = (i: number) => Date.parse(parseLocalDateTime(list[i]!.last_change, h.careCloud.timezone));
    expect(plan[0]).toMatchObject({ start: 0, anchors: [], startAt: null });
    expect(plan.at(-1)).toMatchObject({ end: null, endAt: null });
    for (const [k, slice] of plan.entries()) {
      if (k > 0) {
        expect(slice.startAt).toBe(at(slice.start));
        expect(slice.anchors).toEqual(
          [slice.start - 2, slice.start - 1].map((i) => ({ key: list[i]!.voucher_id, at: at(i) })),
        );
      }
      if (k < plan.length - 1) expect(slice.endAt).toBe(plan[k + 1]!.startAt);
    }
    expect(() => stream.scanSlice!(context, { start: -1, end: 40 })).toThrow(
      /^not a CareCloud slice \(expected \{start, end, anchors, startAt, endAt\}\): .*"start":-1/,
    );
    expect(() => stream.scanSlice!(context, { start: 0, end: null, startAt: 'yesterday' })).toThrow(
      /not a CareCloud slice/,
    );
    expect(() => stream.scanSlice!(context, { start: 40, end: null, anchors: [{ key: 7 }] })).toThrow(
      /not a CareCloud slice/,
    );
  });
});

describe('an incremental scan that another run resumes', () => {
  it('keeps the watermark at the scan start, whatever newer records the list moved into its remaining pages', async () => {
    await h.sync('carecloud');
    const vouchers = listed();
    // The incremental run's work: three pages of changes.
    for (const voucher of vouchers.slice(0, 3 * PAGE)) h.careCloud.store.update(voucher.voucher_id);
    const stop = new AbortController();
    let lists = 0;
    const remove = h.careCloud.store.onListRequest(() => {
      if (++lists === 2) stop.abort();
    });
    await expect(h.sync('carecloud', 'incremental', { signal: stop.signal })).rejects.toThrow();
    remove();
    const held = await h.db.syncState.findUniqueOrThrow({
      where: { source_stream: { source: 'carecloud', stream: 'vouchers' } },
    });
    const scan = (held.progress as { incremental?: { startedAt: string; scan: unknown } }).incremental!;
    expect(scan.scan).not.toBeNull();
    // While it waits, more vouchers change, stamped two minutes ahead (within the clock-skew tolerance): they go
    // to the top of the newest-first list and push the rest down, so the resumed pages hold some of them.
    sourceNow = Date.now() + 120_000;
    for (const voucher of vouchers.slice(3 * PAGE, 6 * PAGE)) h.careCloud.store.update(voucher.voucher_id);
    const resumed = await h.sync('carecloud');
    expect(resumed.counters.fetched).toBeGreaterThan(0);
    // It has not read the list above its saved place, so it cannot vouch for anything after the scan began.
    expect(resumed.watermarkAfter!.getTime()).toBeLessThanOrEqual(Date.parse(scan.startedAt));
    await h.sync('carecloud');
    const stored = new Map((await h.vouchers('carecloud')).map((row) => [row.sourceId, row.raw]));
    expect(listed().filter((v) => !isDeepStrictEqual(stored.get(v.voucher_id), v))).toEqual([]);
  });
});
