import { isDeepStrictEqual } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isServiceCode } from '../../src/fake/carecloud-data.ts';
import type { CareCloudVoucher } from '../../src/fake/carecloud.ts';
import { parseLocalDateTime } from '../../src/sources/parse.ts';
import { createHarness, type Harness } from '../helpers/sync-harness.ts';

let h: Harness;
beforeEach(async () => {
  h = await createHarness();
});
afterEach(async () => {
  await h.close();
});

/** What the table must hold: every well-formed, non-service voucher the fake serves. */
function truth(): CareCloudVoucher[] {
  return h.careCloud.store.all().filter((v) => !isServiceCode(v.code));
}

async function expectTableEqualsTruth() {
  const rows = await h.vouchers('carecloud');
  const expected = truth();
  const byId = new Map(rows.map((r) => [r.sourceId, r]));
  expect(rows.length).toBe(expected.length);
  for (const v of expected) {
    const row = byId.get(v.voucher_id);
    expect(row, `voucher ${v.voucher_id} missing`).toBeDefined();
    expect(row!.raw).toEqual(v);
    expect(row!.status).toBe(v.state === 0 ? 'deleted' : v.state === 2 ? 'inactive' : 'active');
    expect(row!.isDeleted).toBe(v.state === 0);
    expect(row!.sourceModifiedAt?.toISOString()).toBe(parseLocalDateTime(v.last_change, h.careCloud.timezone));
    expect(row!.amount?.toString() ?? null).toBe(v.value === undefined || v.value === null ? null : String(v.value));
  }
}

const listRequests = () => h.careCloud.stats.byEndpoint['GET /vouchers'] ?? 0;

describe('CareCloud sync', () => {
  it('lands exactly the fake vouchers on the first run, and the next run writes nothing with one page request', async () => {
    const first = await h.sync('carecloud');
    expect(first.counters.inserted).toBe(truth().length);
    await expectTableEqualsTruth();
    const runs = await h.db.syncRun.findMany();
    expect(runs).toMatchObject([{ status: 'succeeded', mode: 'incremental', inserted: truth().length }]);

    h.careCloud.stats.reset();
    const second = await h.sync('carecloud');
    expect(listRequests()).toBe(1);
    expect(second.counters).toMatchObject({ inserted: 0, updated: 0, pages: 1 });
    const state = await h.db.syncState.findFirstOrThrow({ where: { source: 'carecloud' } });
    expect(state.watermark).toEqual(second.watermarkAfter);
    expect(state.progress).toEqual({});
  });

  it('brings updates, inserts and soft deletes made between runs', async () => {
    await h.sync('carecloud');
    const [a, b] = truth();
    h.careCloud.store.update(a!.voucher_id, { note: 'changed between runs', value: 99.95 });
    h.careCloud.store.softDelete(b!.voucher_id);
    const added = h.careCloud.store.insert();
    const run = await h.sync('carecloud');
    expect(run.counters).toMatchObject({ inserted: 1, updated: 2 });
    await expectTableEqualsTruth();
    const deleted = await h.db.voucher.findFirstOrThrow({ where: { sourceId: b!.voucher_id } });
    expect(deleted).toMatchObject({ status: 'deleted', isDeleted: true });
    expect(deleted.deletedAt).not.toBeNull();
    expect(await h.db.voucher.count({ where: { sourceId: added.voucher_id } })).toBe(1);
  });

  it('misses nothing changed, inserted or hard-deleted while it pages', async () => {
    await h.sync('carecloud');
    // Between every page request of the next run: one update, one insert, one hard delete.
    let n = 0;
    const remove = h.careCloud.store.onListRequest(() => {
      const all = truth();
      const victim = all[(n * 37) % all.length]!;
      h.careCloud.store.update(all[(n * 53 + 11) % all.length]!.voucher_id);
      h.careCloud.store.insert();
      h.careCloud.store.hardDelete(victim.voucher_id);
      n++;
    });
    await h.sync('carecloud', 'full');
    remove();
    await h.sync('carecloud');
    await h.sync('carecloud', 'full');
    // Hard-deleted vouchers are still in the table, marked deleted; everything else equals the fake.
    const live = await h.db.voucher.findMany({ where: { source: 'carecloud', isDeleted: false } });
    const expectedLive = truth().filter((v) => v.state !== 0);
    expect(new Set(live.map((r) => r.sourceId))).toEqual(new Set(expectedLive.map((v) => v.voucher_id)));
    const stale = live.filter((r) => !isDeepStrictEqual(r.raw, h.careCloud.store.get(r.sourceId)));
    expect(stale).toEqual([]);
    expect(n).toBeGreaterThan(3);
  });

  it('an incremental run that pages through changes leaves nothing for later but what the next incremental run reads', async () => {
    // First sync while vouchers change and appear between its page requests (the run pages DESC from the
    // top, so each change jumps above where it stands).
    let n = 0;
    const remove = h.careCloud.store.onListRequest(() => {
      const all = truth();
      h.careCloud.store.update(all[(n * 53 + 11) % all.length]!.voucher_id, { note: `changed ${n}` });
      h.careCloud.store.insert();
      n++;
    });
    await h.sync('carecloud');
    remove();
    await h.sync('carecloud');
    await expectTableEqualsTruth();
    expect(n).toBeGreaterThan(3);
  });

  it('a full scan marks hard-deleted vouchers deleted after confirming each is gone', async () => {
    await h.sync('carecloud');
    const [gone] = truth();
    h.careCloud.store.hardDelete(gone!.voucher_id);
    const run = await h.sync('carecloud', 'full');
    expect(run.counters.deleted).toBe(1);
    expect(await h.db.voucher.findFirstOrThrow({ where: { sourceId: gone!.voucher_id } })).toMatchObject({
      isDeleted: true,
      status: 'deleted',
    });
    expect(await h.db.voucher.count({ where: { source: 'carecloud', isDeleted: true } })).toBe(
      1 + truth().filter((v) => v.state === 0).length,
    );
    expect(await h.db.scanSeen.count()).toBe(0);
  });

  it('rejects a malformed record with its reason and stores its page-mates', async () => {
    await h.sync('carecloud');
    const bad = h.careCloud.store.insertMalformed('comma-number');
    const good = h.careCloud.store.insert();
    h.careCloud.store.insertMalformed('nonexistent-local-time');
    h.careCloud.store.insertMalformed('missing-id');
    // The record whose last_change does not exist sorts by that (old) time: the incremental run does
    // not reach it, the full scan does.
    const run = await h.sync('carecloud');
    expect(run.counters.rejected).toBe(2);
    // A full scan read in slices reads the records at slice boundaries twice, and counts both reads.
    expect((await h.sync('carecloud', 'full')).counters.rejected).toBeGreaterThanOrEqual(3);
    expect(await h.db.rejectedRecord.count()).toBe(3);
    expect(await h.db.voucher.count({ where: { sourceId: good.voucher_id } })).toBe(1);
    const rejects = await h.db.rejectedRecord.findMany({ orderBy: { id: 'asc' } });
    expect(rejects.map((r) => r.reason)).toEqual(
      expect.arrayContaining([
        expect.stringContaining('value: expected a number, got the string "12,50"'),
        expect.stringMatching(/last_change: ".*" does not exist in Europe\/Prague/),
        expect.stringContaining('voucher_id: is missing'),
      ]),
    );
    expect(rejects.find((r) => r.reason.includes('12,50'))).toMatchObject({
      sourceId: (bad as { voucher_id: string }).voucher_id,
      raw: bad,
    });
    // Seen again on the next run: still one row per distinct record, counted.
    h.careCloud.store.update(good.voucher_id);
    await h.sync('carecloud', 'full');
    expect(await h.db.rejectedRecord.count()).toBe(3);
  });

  it('logs in again when the token expires mid-run, without failing', async () => {
    let n = 0;
    const remove = h.careCloud.store.onListRequest(() => {
      if (n++ === 2) h.careCloud.store.expireTokens();
    });
    const run = await h.sync('carecloud');
    remove();
    expect(run.counters.inserted).toBe(truth().length);
    expect(h.careCloud.stats.byEndpoint['POST /users/actions/login']).toBe(2);
    expect(h.careCloud.stats.byStatus['401']).toBe(1);
  });

  it('rides out 429s (with and without Retry-After) and 503s without failing, counting them', async () => {
    h.careCloud.faults.inject({ kind: 'status', status: 429, retryAfter: 1 }, { on: 'list' });
    h.careCloud.faults.inject({ kind: 'status', status: 429 }, { on: 'list' });
    h.careCloud.faults.inject({ kind: 'status', status: 503 }, { on: 'list', times: 2 });
    const run = await h.sync('carecloud');
    expect(run.counters.inserted).toBe(truth().length);
    expect(run.counters.rateLimited).toBe(2);
    const ledger = await h.db.syncRun.findFirstOrThrow();
    expect(ledger).toMatchObject({ status: 'succeeded', rateLimited: 2 });
    expect(ledger.apiCalls).toBe(run.counters.apiCalls);
  });

  it('never logs the password, the app id or a bearer token', async () => {
    h.careCloud.store.expireTokens();
    await h.sync('carecloud');
    const log = h.logLines.join('');
    expect(log.length).toBeGreaterThan(0);
    for (const secret of [h.careCloud.credentials.password, h.careCloud.credentials.appId])
      expect(log).not.toContain(secret);
    expect(log).not.toMatch(/Bearer [A-Za-z0-9]/);
  });
});
