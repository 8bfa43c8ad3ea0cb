/**
 * CareCloud's page size found at run time (CARECLOUD_PAGE_SIZE=auto, the default): against a fake whose largest
 * accepted `count` is 700 (it answers 400 naming `count` above), the first run finds 700 and keeps it in sync_state;
 * later runs ask for it without probing; a maximum lowered later, even in the middle of a scan, is stepped down to
 * and kept; every voucher is read, sliced or not, and a customer run pages with the size found; the status and the dry
 * runs count with it; a number configured is asked for exactly as before. A hostile proxy in front of the fake
 * (passing everything through) shows what each request asked for.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { isServiceCode } from '../../src/fake/carecloud-data.ts';
import { estimateWork } from '../../src/status/estimate-work.ts';
import { formatStatus } from '../../src/status/format-status.ts';
import { readStatus } from '../../src/status/read-status.ts';
import { runCustomerSync } from '../../src/sync/customer-sync.ts';
import { createHarness, type Harness } from '../helpers/sync-harness.ts';

let h: Harness;
afterEach(async () => {
  await h.close();
});

const AUTO = { CARECLOUD_PAGE_SIZE: 'auto', CIN7_USERNAME: '', CIN7_API_KEY: '' };

async function setUp(count: number, env: Record<string, string> = {}) {
  h = await createHarness({ hostile: true, careCloud: { count, maxCount: 700 }, env: { ...AUTO, ...env } });
  return h;
}

/** The `count` of every list request the proxy has seen, from the `from`-th on. */
const counts = (from = 0) =>
  h.hostile.carecloud.requests
    .filter((r) => r.method === 'GET' && /\/vouchers$/.test(r.path))
    .slice(from)
    .map((r) => Number(r.query.get('count')));
const refusals = () => h.careCloud.stats.byStatus['400'] ?? 0;
const storedSize = async () => {
  const state = await h.db.syncState.findUniqueOrThrow({
    where: { source_stream: { source: 'carecloud', stream: 'vouchers' } },
  });
  return { accepted: state.pageSizeAccepted, refused: state.pageSizeRefused };
};

/** Every voucher the fake lists is in the table, as the fake holds it, and nothing else. */
async function expectTable() {
  const truth = h.careCloud.store.all().filter((v) => !isServiceCode(v.code));
  const rows = await h.vouchers('carecloud');
  expect(rows.length).toBe(truth.length);
  const byId = new Map(rows.map((r) => [r.sourceId, r.raw]));
  for (const voucher of truth) expect(byId.get(voucher.voucher_id), voucher.voucher_id).toEqual(voucher);
  return truth.length;
}

describe('CareCloud page size found at run time', () => {
  it('finds the largest count accepted, keeps it, and later runs ask for it without probing', async () => {
    await setUp(3000);
    const first = await h.sync('carecloud');
    // The plan's request for the total settles it: 1000 refused (naming 700), 700 accepted, 701 refused.
    expect(counts().slice(0, 3)).toEqual([1000, 700, 701]);
    expect(refusals()).toBe(2);
    expect(await storedSize()).toEqual({ accepted: 700, refused: 701 });
    expect(counts(3).every((count) => count === 700)).toBe(true);
    expect(first.counters.inserted).toBe(await expectTable());
    expect(h.logLines.join('')).toContain('page size found: carecloud accepts 700 records a request (701 refused)');

    const seen = counts().length;
    h.careCloud.store.update(h.careCloud.store.all()[0]!.voucher_id, { note: 'changed after the first run' });
    expect((await h.sync('carecloud')).counters.updated).toBe(1);
    const full = await h.sync('carecloud', 'full');
    expect(full.counters.fetched).toBeGreaterThanOrEqual(first.counters.inserted);
    expect(refusals()).toBe(2);
    // The reconciliation's plan asks for one record (its total), its pages for the size found.
    expect(counts(seen).every((count) => count === 700 || count === 1)).toBe(true);
    await expectTable();

    const report = await readStatus({ db: h.db, redis: h.redis, config: h.config });
    const careCloud = report.sources.find((s) => s.source === 'carecloud')!;
    expect(careCloud.pageSize).toMatchObject({ size: 700, setting: 'auto', found: true, accepted: 700, refused: 701 });
    expect(formatStatus(report)).toMatch(/page size +700 records a request, found at run time \(701 refused, at /);

    // The dry runs of backfill and reset count in requests of the size found, not of the ceiling.
    const runtime = h.runtime('carecloud');
    const estimate = await estimateWork({
      source: 'carecloud',
      stream: runtime.streams[0]!,
      client: runtime.client,
      db: h.db,
      limits: runtime.settings.limits,
      range: null,
    });
    expect(estimate.cost.requests).toBe(Math.ceil((Math.ceil(estimate.records / 700) + 1) * 1.05) + 1);
  });

  it('reads a sliced first backfill with the size found: every voucher, slices cut to it, none probing', async () => {
    await setUp(5000, { CARECLOUD_SLICE_PAGES: '2' });
    const run = await h.sync('carecloud');
    expect(h.logLines.join('')).toContain('reading the scan in slices');
    expect(refusals()).toBe(2);
    expect(counts(3).every((count) => count <= 700)).toBe(true);
    // Slices of 2 requests of 700 (less the one record each re-reads): 5000 vouchers in 4 slices, 2 requests each
    // and the last slice's empty page, besides the plan's total and boundaries.
    expect(counts(3).filter((count) => count === 700).length).toBeLessThanOrEqual(4 * 2 + 2);
    expect(run.counters.inserted).toBe(await expectTable());
  });

  it('steps down when the API lowers its maximum in the middle of a scan, and keeps the new one', async () => {
    await setUp(3000, { CARECLOUD_SLICE_PAGES: '2' });
    await h.sync('carecloud', 'full');
    expect(await storedSize()).toEqual({ accepted: 700, refused: 701 });
    const before = refusals();
    // After the plan and a page of the first slice, CareCloud accepts no more than 400.
    h.careCloud.store.onListRequest(({ n }) => {
      if (n === 4) h.careCloud.maxCount = 400;
    });
    h.careCloud.store.update(h.careCloud.store.all()[10]!.voucher_id, { note: 'changed before the second scan' });
    const full = await h.sync('carecloud', 'full');
    expect(full.counters.updated).toBe(1);
    expect(await storedSize()).toEqual({ accepted: 400, refused: 401 });
    // 700 refused (naming 400), then 401 to confirm: the slices that follow read what the first one learnt.
    expect(refusals() - before).toBe(2);
    expect(await h.db.syncRun.findFirstOrThrow({ orderBy: { id: 'desc' } })).toMatchObject({
      status: 'succeeded',
      warnings: [],
    });
    await expectTable();
  });

  it("reads a customer's vouchers in pages of the size found", async () => {
    await setUp(600);
    await h.sync('carecloud');
    const customerId = h.careCloud.store.all().find((v) => v.state !== 0 && !isServiceCode(v.code))!.customer_id;
    const runtime = h.runtime('carecloud');
    const result = await runCustomerSync({
      source: 'carecloud',
      stream: runtime.streams[0]!,
      client: runtime.client,
      customerIds: [customerId],
      db: h.db,
      logger: h.logger,
      confirmMax: 10,
    });
    expect(result.status).toBe('succeeded');
    const asked = h.hostile.carecloud.requests
      .filter((r) => r.path.endsWith(`/customers/${customerId}/vouchers`))
      .map((r) => Number(r.query.get('count')));
    expect(asked).toEqual([700]);
    expect(refusals()).toBe(2);
  });

  it('asks for exactly the number CARECLOUD_PAGE_SIZE sets, and keeps nothing', async () => {
    await setUp(600, { CARECLOUD_PAGE_SIZE: '100' });
    await h.sync('carecloud', 'full');
    expect(new Set(counts())).toEqual(new Set([1, 100]));
    expect(await storedSize()).toEqual({ accepted: null, refused: null });
    const report = await readStatus({ db: h.db, redis: h.redis, config: h.config });
    expect(report.sources.find((s) => s.source === 'carecloud')!.pageSize).toMatchObject({
      size: 100,
      setting: 'configured',
    });
    await expectTable();
  });

  it('fails on a number larger than CareCloud accepts, saying which setting to change and to what', async () => {
    await setUp(600, { CARECLOUD_PAGE_SIZE: '800' });
    await expect(h.sync('carecloud')).rejects.toThrow(
      /CARECLOUD_PAGE_SIZE=800 asks for more records a page than CareCloud accepts: set it to 700, or to auto/,
    );
    expect(refusals()).toBe(1);
    expect(await h.db.syncRun.findFirstOrThrow({ orderBy: { id: 'desc' } })).toMatchObject({ status: 'failed' });
  });
});
