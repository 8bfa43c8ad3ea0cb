/**
 * Scans against servers that misbehave (issue #9, items 1, 6 and 8): a lying total, an ignored `offset`, an
 * ignored `where`, pages too large to hold. Each run must end — read to the end, or stopped with an error
 * naming what the server did — with few requests, nothing lost from the table, and the run in the ledger.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { isServiceCode } from '../../src/fake/carecloud-data.ts';
import { createHarness, type Harness } from '../helpers/sync-harness.ts';
import { hugeAbove, ignoringOffset, ignoringWhere, lyingTotal, refusingCount } from '../hostile/scan-behaviours.ts';

let h: Harness;
afterEach(async () => {
  await h.close();
});

const careCloudTruth = () => h.careCloud.store.all().filter((v) => !isServiceCode(v.code));
const listRequests = (source: 'carecloud' | 'cin7') =>
  h.hostile[source].requests.filter((r) => r.method === 'GET' && /\/(vouchers|v1\/Voucher)$/.test(r.path)).length;

/** The live rows of a source, as {id: raw}, against what the fake serves. */
async function expectTable(source: 'carecloud' | 'cin7') {
  const rows = (await h.vouchers(source)).filter((r) => !r.isDeleted || source === 'carecloud');
  const truth: { id: string; raw: unknown }[] =
    source === 'carecloud'
      ? careCloudTruth().map((v) => ({ id: v.voucher_id, raw: v }))
      : h.cin7.store.all().map((v) => ({ id: v.code, raw: v }));
  expect(rows.length).toBe(truth.length);
  const byId = new Map(rows.map((r) => [r.sourceId, r.raw]));
  for (const { id, raw } of truth) expect(byId.get(id), `voucher ${id}`).toEqual(raw);
}

const lastRun = () => h.db.syncRun.findFirstOrThrow({ orderBy: { id: 'desc' } });

describe('scans against a hostile server', () => {
  it('reads on past a total_items that lies low, and the run says so', async () => {
    h = await createHarness({ hostile: true, careCloud: { count: 300 } });
    h.hostile.carecloud.set(lyingTotal(50));
    const full = await h.sync('carecloud', 'full');
    expect(full.counters.inserted).toBe(careCloudTruth().length);
    const run = await lastRun();
    expect(run.status).toBe('succeeded');
    expect(run.warnings).toHaveLength(1);
    expect(run.warnings[0]).toContain(
      `read ${careCloudTruth().length} distinct records (and rejected 0), but carecloud reported a total of 50`,
    );
    const fullRequests = listRequests('carecloud');
    expect(fullRequests).toBeLessThanOrEqual(6);

    h.careCloud.store.update(careCloudTruth()[0]!.voucher_id, { note: 'changed after the full scan' });
    const incremental = await h.sync('carecloud');
    expect(incremental.counters.updated).toBe(1);
    await expectTable('carecloud');
    console.info(
      `lying total: full scan ${fullRequests} list requests, ${full.counters.inserted} stored; incremental ${listRequests('carecloud') - fullRequests}`,
    );
  });

  it('stops a full scan whose server ignores offset and sends no total, after a few requests, losing nothing', async () => {
    h = await createHarness({ hostile: true, careCloud: { count: 100 }, env: { CARECLOUD_PAGE_SIZE: '20' } });
    await h.sync('carecloud', 'full');
    const before = listRequests('carecloud');
    h.hostile.carecloud.set(ignoringOffset);
    // Pages of 20: the first page is full, so the scan asks on, and gets the same page again and again.
    await expect(h.sync('carecloud', 'full')).rejects.toThrow(
      /CareCloud returned only records this scan had already read for 5 pages in a row .*ignore `offset`/,
    );
    const requests = listRequests('carecloud') - before;
    expect(requests).toBeLessThanOrEqual(8);
    const run = await lastRun();
    expect(run).toMatchObject({ status: 'failed', mode: 'full' });
    expect(run.error).toMatch(/ignore `offset`/);
    expect(run.apiCalls).toBeLessThanOrEqual(8);
    await expectTable('carecloud');
    console.info(`ignored offset: ${requests} list requests, then failed; table intact`);
  });

  it('stops a Cin7 scan whose server ignores where at its first answer, losing nothing', async () => {
    h = await createHarness({ hostile: true, cin7: { count: 300 } });
    await h.sync('cin7');
    const before = listRequests('cin7');
    h.hostile.cin7.set(ignoringWhere);
    await expect(h.sync('cin7')).rejects.toThrow(
      /Cin7 answered a request for records >= .* it seems to ignore `where`/,
    );
    const requests = listRequests('cin7') - before;
    expect(requests).toBe(1);
    expect(await lastRun()).toMatchObject({ status: 'failed', mode: 'incremental', apiCalls: 1 });
    const rows = await h.vouchers('cin7');
    expect(rows.length).toBe(300);
    console.info(`ignored where: ${requests} list request, then failed; 300 rows intact`);
  });

  it('asks for smaller pages when an answer is too large to hold, and reads everything', async () => {
    h = await createHarness({
      hostile: true,
      careCloud: { count: 300 },
      cin7: { count: 300 },
      env: { HTTP_MAX_RESPONSE_SIZE: '256kB' },
    });
    h.hostile.carecloud.set(hugeAbove(30));
    h.hostile.cin7.set(hugeAbove(100));
    const careCloud = await h.sync('carecloud', 'full');
    expect(careCloud.counters.inserted).toBe(careCloudTruth().length);
    await expectTable('carecloud');
    const cin7 = await h.sync('cin7', 'full');
    expect(cin7.counters.inserted).toBe(300);
    await expectTable('cin7');
    const cin7Incremental = await h.sync('cin7');
    expect(cin7Incremental.counters.inserted).toBe(0);
    console.info(`too large: CareCloud ${listRequests('carecloud')} list requests, Cin7 ${listRequests('cin7')}`);
  });

  describe('a 400 about count, with the page size found at run time', () => {
    const AUTO = { CARECLOUD_PAGE_SIZE: 'auto' };
    const counts = () =>
      h.hostile.carecloud.requests
        .filter((r) => r.method === 'GET' && /\/vouchers$/.test(r.path))
        .map((r) => Number(r.query.get('count')));
    const storedSize = async () => {
      const state = await h.db.syncState.findUniqueOrThrow({
        where: { source_stream: { source: 'carecloud', stream: 'vouchers' } },
      });
      return { accepted: state.pageSizeAccepted, refused: state.pageSizeRefused };
    };

    it('finds the largest count by halving when the 400 names a wrong maximum, and reads everything', async () => {
      h = await createHarness({ hostile: true, careCloud: { count: 2000 }, env: AUTO });
      h.hostile.carecloud.set(refusingCount(333, { message: 'count must be at most 900' }));
      const full = await h.sync('carecloud', 'full');
      expect(await storedSize()).toEqual({ accepted: 333, refused: 334 });
      const refused = counts().filter((count) => count > 333).length;
      expect(refused).toBeLessThanOrEqual(11);
      expect(full.counters.inserted).toBe(careCloudTruth().length);
      await expectTable('carecloud');
      // The plan's probes (refused or not) and the pages of 333, each re-reading one record.
      expect(counts().length).toBeLessThanOrEqual(2 * 11 + Math.ceil(careCloudTruth().length / 332) + 2);
      console.info(`wrong maximum named: ${refused} refused of ${counts().length} list requests; 333 found`);
    });

    it('fails naming count after about log2(1000) requests when every size is refused, losing nothing', async () => {
      h = await createHarness({ hostile: true, careCloud: { count: 300 }, env: AUTO });
      await h.sync('carecloud', 'full');
      const before = counts().length;
      h.hostile.carecloud.set(refusingCount(0, { name: ['count'], message: 'not allowed' }));
      // 1000 was accepted: refused now, the incremental run's first page steps down, halving, to 1.
      await expect(h.sync('carecloud')).rejects.toThrow(
        /carecloud refuses even a page of 1 record: its 400 names `count` whatever the size/,
      );
      expect(counts().slice(before)).toEqual([1000, 500, 250, 125, 62, 31, 15, 7, 3, 1]);
      expect(await lastRun()).toMatchObject({ status: 'failed', mode: 'incremental' });
      await expectTable('carecloud');
      // Once it behaves again, the next run asks for 1, which ends the refusal, then for the ceiling again.
      h.hostile.carecloud.set(null);
      await h.sync('carecloud');
      expect(await storedSize()).toEqual({ accepted: 1000, refused: null });
    });

    it('halves as before on an answer too large to hold, while the size is still to find', async () => {
      h = await createHarness({
        hostile: true,
        careCloud: { count: 300 },
        env: { ...AUTO, HTTP_MAX_RESPONSE_SIZE: '256kB' },
      });
      h.hostile.carecloud.set(hugeAbove(30));
      const full = await h.sync('carecloud', 'full');
      expect(full.counters.inserted).toBe(careCloudTruth().length);
      await expectTable('carecloud');
      // CareCloud refused nothing: what it accepts is still to find, and every scan halves from the ceiling again.
      expect((await storedSize()).refused).toBeNull();
    });

    it('takes a 400 about another parameter for the bad request it is: no smaller page is asked for', async () => {
      h = await createHarness({ hostile: true, careCloud: { count: 300 }, env: AUTO });
      h.hostile.carecloud.set(refusingCount(0, { name: 'offset', message: 'offset must be from 0 to 10' }));
      await expect(h.sync('carecloud')).rejects.toThrow(/offset must be from 0 to 10/);
      expect(counts()).toEqual([1000]);
      expect(await storedSize()).toEqual({ accepted: null, refused: null });
    });
  });
});
