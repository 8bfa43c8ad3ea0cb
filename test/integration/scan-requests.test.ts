/**
 * Requests a full scan makes (issue 14 §1): against a quiet source, close to the minimum — `ceil(N / page size)`
 * list requests, plus what the API needs to show the end (Cin7: one empty page) and the login — and under churn,
 * nothing missed.
 *
 * The overhead does not grow with N but with the number of slices: CareCloud pays one request for the plan's
 * total, one per slice boundary (the plan's read of it) and one re-read record per request while nothing shifts
 * (QUIET_OVERLAP), so a scan of N vouchers in S slices makes at most ceil(N / (pageSize − 1)) + 2S + 1 list
 * requests; at the defaults (pages of 100, slices of 250 pages) that is ≤ 1.02 × the minimum from N = 50,000
 * on (bench: `npm run bench -- --only requests`). It is shown here at 20,000 vouchers in slices of 50 pages,
 * so that the slice boundaries are exercised at a test's size.
 */
import { isDeepStrictEqual } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { isServiceCode } from '../../src/fake/carecloud-data.ts';
import type { Cin7Voucher } from '../../src/fake/cin7-data.ts';
import { parseIsoDateTime } from '../../src/sources/parse.ts';
import { sliceSize } from '../../src/sources/carecloud/slices.ts';
import { createHarness, type Harness } from '../helpers/sync-harness.ts';

// The overhead bound does not grow with N (a request per slice boundary, one re-read record per page), so a few
// thousand vouchers in several slices show what 50,000 would.
const N = 6_000;

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const careCloudLists = (harness: Harness) => harness.careCloud.stats.byEndpoint['GET /vouchers'] ?? 0;

/** The fake Cin7's bulk import: the vouchers sharing the most common CreatedDate, in the order it pages them. */
function cin7Burst(harness: Harness): { second: string; vouchers: Cin7Voucher[] } {
  const byDate = new Map<string, Cin7Voucher[]>();
  for (const v of harness.cin7.store.all()) byDate.set(v.createdDate, [...(byDate.get(v.createdDate) ?? []), v]);
  const vouchers = [...byDate.values()].sort((a, b) => b.length - a.length)[0]!;
  const second = parseIsoDateTime(vouchers[0]!.createdDate, 'UTC').replace(/\.\d{3}Z$/, 'Z');
  return { second, vouchers };
}

/** Calls `onGroupPage(page)` before each list request the fake gets for pages from `second` on; returns the remover. */
function onPagesFrom(harness: Harness, second: string, onGroupPage: (page: number) => void): () => void {
  return harness.cin7.store.onListRequest(({ query }) => {
    if ((query.get('where') ?? '').startsWith(`CreatedDate>='${second}'`)) onGroupPage(Number(query.get('page')));
  });
}

/** The Cin7 vouchers at the source that the table lacks. */
async function missingCin7(harness: Harness): Promise<string[]> {
  const stored = new Set((await harness.vouchers('cin7')).map((r) => r.sourceId));
  return harness.cin7.store
    .all()
    .map((v) => v.code)
    .filter((code) => !stored.has(code));
}

describe('requests of a full scan of a quiet source', () => {
  it('CareCloud: a first backfill and a reconciliation in slices stay within the bound, and an idle run is one request', async () => {
    const sliced = { pageSize: 100, pageOverlap: 5, slicePages: 12 };
    h = await createHarness({
      careCloud: { seed: 7, count: N, rateLimits: null },
      env: { CARECLOUD_PAGE_SIZE: '100', CARECLOUD_PAGE_OVERLAP: '5', CARECLOUD_SLICE_PAGES: '12' },
    });
    const listed = h.careCloud.store.all().filter((v) => !isServiceCode(v.code)).length;
    const slices = Math.ceil(listed / sliceSize(sliced));
    const bound = Math.ceil(listed / 99) + 2 * slices + 1;
    expect(slices).toBeGreaterThan(3);

    await h.sync('carecloud', 'incremental');
    expect(await h.db.voucher.count({ where: { source: 'carecloud' } })).toBe(listed);
    const backfill = careCloudLists(h);
    h.careCloud.stats.reset();
    const reconciliation = await h.sync('carecloud', 'full');
    expect(reconciliation.counters).toMatchObject({ inserted: 0, updated: 0 });
    const full = careCloudLists(h);
    console.log(`CareCloud ${listed} in ${slices} slices: ${backfill} and ${full} list requests (bound ${bound})`);
    expect(backfill).toBeLessThanOrEqual(bound);
    expect(full).toBeLessThanOrEqual(bound);

    h.careCloud.stats.reset();
    const { watermark } = await h.db.syncState.findUniqueOrThrow({
      where: { source_stream: { source: 'carecloud', stream: 'vouchers' } },
    });
    const idle = await h.sync('carecloud', 'incremental');
    expect(h.careCloud.stats.requests).toBe(1);
    // Of its page, only the vouchers changed within the lookback (10 minutes) of the watermark are mapped and compared.
    const recent = await h.db.voucher.count({
      where: { source: 'carecloud', sourceModifiedAt: { gte: new Date(watermark!.getTime() - 600_000) } },
    });
    expect(idle.counters).toMatchObject({ fetched: recent, unchanged: recent });
    expect(recent).toBeLessThan(99);
  }, 300_000);

  it('Cin7: a reconciliation makes the minimum plus the plan, and an idle run is one request', async () => {
    h = await createHarness({ cin7: { seed: 7, count: N, rateLimits: null }, env: { CIN7_PAGE_SIZE: '250' } });
    const listed = h.cin7.store.all().length;
    await h.sync('cin7', 'incremental');
    expect(await h.db.voucher.count({ where: { source: 'cin7' } })).toBe(listed);
    h.cin7.stats.reset();
    await h.sync('cin7', 'full');
    // ceil(N / 250) pages, the empty page that shows the end, and the plan's one probe (too small to split).
    expect(h.cin7.stats.requests).toBe(Math.ceil(listed / 250) + 1 + 1);
    h.cin7.stats.reset();
    await h.sync('cin7', 'incremental');
    expect(h.cin7.stats.requests).toBe(1);
  }, 300_000);
});

describe('requests of a Cin7 first backfill through a bulk import', () => {
  // 6,000 vouchers, 15 % of them (about 900, more than three pages of 250) sharing one CreatedDate.
  it('reads the bulk import once, in pages that overlap by a few records: the minimum plus the plan and a page', async () => {
    h = await createHarness({ cin7: { seed: 7, count: N, rateLimits: null }, env: { CIN7_PAGE_SIZE: '250' } });
    const harness = h;
    const listed = harness.cin7.store.all().length;
    const burst = cin7Burst(harness);
    expect(burst.vouchers.length).toBeGreaterThan(3 * 250);
    const firstPages: number[] = [];
    const stop = onPagesFrom(harness, burst.second, (page) => page === 1 && firstPages.push(page));
    await harness.sync('cin7', 'incremental');
    stop();
    expect(await missingCin7(harness)).toEqual([]);
    expect(await harness.db.voucher.count({ where: { source: 'cin7' } })).toBe(listed);
    const requests = harness.cin7.stats.requests;
    // ceil(N / 250) pages, the empty page that shows the end, the plan's one probe; and, at most, one page for the
    // records read twice (each page by value re-reads its last second, each page of the bulk import its anchors).
    const minimum = Math.ceil(listed / 250) + 1;
    console.log(
      `Cin7 first backfill of ${listed} (${burst.vouchers.length} in one second): ${requests} requests, minimum ${minimum}`,
    );
    expect(requests).toBeLessThanOrEqual(minimum + 1 + 1);
    expect(firstPages).toHaveLength(1); // one pass over the bulk import
  }, 300_000);

  it('under churn inside the bulk import misses no voucher; the requests follow what moved', async () => {
    h = await createHarness({ cin7: { seed: 7, count: N, rateLimits: null }, env: { CIN7_PAGE_SIZE: '250' } });
    const harness = h;
    const { store } = harness.cin7;
    const burst = cin7Burst(harness);
    const passes: number[] = [];
    let deleted = 0;
    const stop = onPagesFrom(harness, burst.second, (page) => {
      if (page === 1) return void passes.push(page);
      // Before each page of the bulk import after its first: one of its vouchers already read vanishes (the
      // rows after it shift up by one), one is redeemed, and a new voucher is created.
      if (store.hardDelete(burst.vouchers[10 + deleted]!.code)) deleted++;
      store.redeem(burst.vouchers[400 + deleted]!.code, 1);
      store.insert();
    });
    await harness.sync('cin7', 'incremental');
    stop();
    expect(deleted).toBeGreaterThan(2);
    expect(passes).toHaveLength(1);
    expect(await missingCin7(harness)).toEqual([]);
    const quiet = harness.cin7.stats.requests;

    // Vouchers already read vanish at once before the bulk import's second page: five (more than the overlap)
    // cost a step back, a request or two; three hundred (more than a step back finds) a second pass. None is missed.
    for (const [count, expected] of [
      [5, { passes: 1, extra: 2 }],
      [300, { passes: 2, extra: Math.ceil(burst.vouchers.length / 250) + 2 }],
    ] as const) {
      const more = await createHarness({
        cin7: { seed: 7, count: N, rateLimits: null },
        env: { CIN7_PAGE_SIZE: '250' },
      });
      try {
        const moreBurst = cin7Burst(more); // the fake's dates follow the time it started
        const again: number[] = [];
        let removed = false;
        const stopMore = onPagesFrom(more, moreBurst.second, (page) => {
          if (page === 1) return void again.push(page);
          if (removed) return;
          for (const voucher of moreBurst.vouchers.slice(20, 20 + count)) more.cin7.store.hardDelete(voucher.code);
          removed = true;
        });
        await more.sync('cin7', 'incremental');
        stopMore();
        expect(removed).toBe(true);
        expect(await missingCin7(more)).toEqual([]);
        console.log(
          `Cin7 bulk import, ${count} vanishing at once: ${more.cin7.stats.requests} requests (${quiet} quiet)`,
        );
        expect(again).toHaveLength(expected.passes);
        expect(more.cin7.stats.requests).toBeLessThanOrEqual(quiet + expected.extra);
      } finally {
        await more.close();
      }
    }

    // A reconciliation then leaves the table equal to the source (the redemptions changed no date).
    await harness.sync('cin7', 'full');
    const rows = new Map((await harness.vouchers('cin7')).filter((r) => !r.isDeleted).map((r) => [r.sourceId, r]));
    const truth = store.all();
    expect(rows.size).toBe(truth.length);
    expect(truth.filter((v) => !isDeepStrictEqual(rows.get(v.code)?.raw, v)).map((v) => v.code)).toEqual([]);
  }, 300_000);
});

describe('requests of a full scan under churn', () => {
  it('CareCloud: rows deleted, changed and added while slices page are all read; the overhead follows what moved', async () => {
    h = await createHarness({
      careCloud: { seed: 11, count: 3_000, rateLimits: null },
      env: { CARECLOUD_PAGE_SIZE: '50', CARECLOUD_PAGE_OVERLAP: '5', CARECLOUD_SLICE_PAGES: '4' },
    });
    const harness = h;
    await harness.sync('carecloud', 'incremental');
    const store = harness.careCloud.store;
    let moved = 0;
    let n = 0;
    // Before every third list request: a voucher vanishes (the rows after it shift up), and random changes.
    const stop = store.onListRequest(() => {
      if (n++ % 3 !== 0) return;
      const live = store.all().filter((v) => !isServiceCode(v.code));
      store.hardDelete(live[(n * 7919) % live.length]!.voucher_id);
      store.churn(2);
      moved += 3;
    });
    harness.careCloud.stats.reset();
    await harness.sync('carecloud', 'full');
    stop();
    const full = careCloudLists(harness);
    // The calm run after it reads what changed during the scan (a sliced scan's watermark stays at its start).
    await harness.sync('carecloud', 'incremental');
    const rows = new Map((await harness.vouchers('carecloud')).map((r) => [r.sourceId, r]));
    const truth = store.all().filter((v) => !isServiceCode(v.code));
    const missing = truth.filter((v) => rows.get(v.voucher_id) === undefined).map((v) => v.voucher_id);
    const stale = truth.filter((v) => {
      const row = rows.get(v.voucher_id);
      return row !== undefined && !isDeepStrictEqual(row.raw, v);
    });
    console.log(`CareCloud under churn: ${full} list requests, ${moved} changes while paging`);
    expect(missing).toEqual([]);
    expect(stale.map((v) => v.voucher_id)).toEqual([]);
    expect(moved).toBeGreaterThan(20);
  }, 300_000);
});
