import { DateTime } from 'luxon';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createFakeCareCloud, type CareCloudVoucher } from '../../src/fake/carecloud.ts';
import { CARECLOUD_MALFORMED_KINDS } from '../../src/fake/carecloud-store.ts';
import { careCloudClient, careCloudLogin } from './fake-clients.ts';

const ZONE = 'Europe/Prague';
const FORMAT = 'yyyy-MM-dd HH:mm:ss';
const ANCHOR = Date.UTC(2025, 10, 20, 9, 0, 0);
const isService = (v: { code?: unknown }) => /^(canceled_|initial_)/.test(String(v.code));
const ids = (vouchers: Array<Record<string, unknown>>) => vouchers.map((v) => v.voucher_id);
const local = (text: string) => DateTime.fromFormat(text, FORMAT, { zone: ZONE });

describe('fake CareCloud', () => {
  let clock = ANCHOR;
  const fake = createFakeCareCloud({
    seed: 11,
    count: 1000,
    anchor: ANCHOR,
    now: () => clock,
    rateLimits: null,
    tokenTtlMs: 30 * 86_400_000,
  });
  let client: Awaited<ReturnType<typeof careCloudClient>>;
  let removeHook: (() => void) | undefined;

  beforeAll(async () => {
    await fake.start();
    client = await careCloudClient(fake);
  });
  afterEach(() => removeHook?.());
  afterAll(() => fake.stop());

  describe('data', () => {
    const all = fake.store.all();

    it('is the same for the same seed and anchor, and differs for another seed', () => {
      const twin = createFakeCareCloud({ seed: 11, count: 1000, anchor: ANCHOR, now: () => ANCHOR });
      const other = createFakeCareCloud({ seed: 12, count: 1000, anchor: ANCHOR, now: () => ANCHOR });
      expect(twin.store.all()).toEqual(all);
      expect(ids(other.store.all())).not.toEqual(ids(all));
    });

    it('has more than a page of vouchers sharing one last_change second', () => {
      const perSecond = new Map<string, number>();
      for (const v of all) perSecond.set(v.last_change, (perSecond.get(v.last_change) ?? 0) + 1);
      expect(Math.max(...perSecond.values())).toBeGreaterThan(100);
    });

    it('has local times in the repeated autumn hour and next to the spring gap, none inside the gap', () => {
      const repeated = all.filter((v) => {
        const t = local(v.last_change);
        return (
          t.minus({ hours: 1 }).toFormat(FORMAT) === v.last_change ||
          t.plus({ hours: 1 }).toFormat(FORMAT) === v.last_change
        );
      });
      expect(repeated.length).toBeGreaterThan(0);
      // Spring forward: the offset grows within a few real minutes of the stamp.
      const nextToGap = all.filter((v) => {
        const t = local(v.last_change);
        return t.plus({ minutes: 6 }).offset > t.offset || t.minus({ minutes: 6 }).offset < t.offset;
      });
      expect(nextToGap.length).toBeGreaterThan(0);
      for (const v of all) expect(local(v.last_change).toFormat(FORMAT)).toBe(v.last_change);
    });

    it('lies mostly in the past 90 days, and almost nothing in the last 10 minutes', () => {
      const ages = all.map((v) => ANCHOR - local(v.last_change).toMillis());
      expect(ages.filter((age) => age >= 0 && age <= 90 * 86_400_000).length / ages.length).toBeGreaterThan(0.6);
      expect(ages.filter((age) => age < 600_000).length).toBe(0);
    });

    it('includes a few service vouchers and some unknown fields', () => {
      expect(all.filter(isService).length).toBeGreaterThanOrEqual(3);
      expect(all.some((v) => 'channel' in v)).toBe(true);
    });
  });

  describe('paging and sorting', () => {
    it('pages through every voucher exactly once, ASC by last_change, and DESC is the exact reverse', async () => {
      const asc = await client.pageAll({ sort_field: 'last_change', sort_direction: 'ASC' });
      const desc = await client.pageAll({ sort_field: 'last_change', sort_direction: 'DESC' }, 70);
      const expected = fake.store.all().filter((v) => !isService(v));
      expect(new Set(ids(asc)).size).toBe(expected.length);
      expect(new Set(ids(asc))).toEqual(new Set(ids(expected)));
      const stamps = asc.map((v) => String(v.last_change));
      expect(stamps).toEqual([...stamps].sort());
      expect(ids(desc)).toEqual(ids(asc).reverse());
    });

    it('keeps one order among vouchers with the same second from one request to the next', async () => {
      const first = await client.get('/vouchers', { sort_field: 'last_change', count: 1000 });
      const again = await client.get('/vouchers', { sort_field: 'last_change', count: 1000 });
      expect(ids(again.json.data.vouchers)).toEqual(ids(first.json.data.vouchers));
      const page = await client.get('/vouchers', { sort_field: 'last_change', count: 100, offset: 300 });
      expect(ids(page.json.data.vouchers)).toEqual(ids(first.json.data.vouchers).slice(300, 400));
    });

    it('reports total_items across pages and sorts on other fields', async () => {
      const answer = await client.get('/vouchers', { sort_field: 'value', sort_direction: 'DESC', count: 1000 });
      const values = answer.json.data.vouchers.map((v: CareCloudVoucher) => v.value);
      expect(values).toEqual([...values].sort((a: number, b: number) => b - a));
      const small = await client.get('/vouchers', { count: 10 });
      expect(small.json.data.vouchers).toHaveLength(10);
      expect(small.json.data.total_items).toBe(answer.json.data.total_items);
    });

    it('answers 400 with invalid_params for a count above the maximum and other bad values', async () => {
      const big = await client.get('/vouchers', { count: 1001 });
      expect(big.status).toBe(400);
      expect(big.json.error.error_data.invalid_params).toEqual([
        expect.objectContaining({ name: 'count', reason: 'not_allowed_value' }),
      ]);
      const bad = await client.get('/vouchers', { offset: -1, sort_field: 'nope', is_valid: 'maybe' });
      expect(bad.json.error.error_data.invalid_params.map((p: { name: string }) => p.name).sort()).toEqual([
        'is_valid',
        'offset',
        'sort_field',
      ]);
    });
  });

  describe('filters', () => {
    const all = () => fake.store.all().filter((v) => !isService(v));

    it('customer_id, code, reward_id[], store_id, is_applied and is_valid select what they say', async () => {
      const [someone] = all();
      const byCustomer = await client.pageAll({ customer_id: someone!.customer_id });
      expect(new Set(ids(byCustomer))).toEqual(
        new Set(ids(all().filter((v) => v.customer_id === someone!.customer_id))),
      );
      const viaPath = await client.get(`/customers/${someone!.customer_id}/vouchers`);
      expect(new Set(ids(viaPath.json.data.vouchers))).toEqual(new Set(ids(byCustomer)));

      const byCode = await client.get('/vouchers', { code: someone!.code });
      expect(ids(byCode.json.data.vouchers)).toEqual([someone!.voucher_id]);

      const rewards = [...new Set(all().map((v) => v.reward.reward_id))].slice(0, 2);
      const byReward = await client.pageAll({ 'reward_id[]': rewards });
      expect(byReward.length).toBe(all().filter((v) => rewards.includes(v.reward.reward_id)).length);

      const applied = await client.pageAll({ is_applied: true });
      const notApplied = await client.pageAll({ is_applied: false });
      expect(applied.every((v) => typeof v.applied_date === 'string')).toBe(true);
      expect(applied.length + notApplied.length).toBe(all().length);
      expect(applied.length).toBeGreaterThan(0);

      const nowLocal = fake.store.nowLocal();
      const valid = await client.pageAll({ is_valid: true });
      expect(valid.length).toBe(all().filter((v) => v.valid_from <= nowLocal && nowLocal <= v.valid_to).length);

      const storeId = (await client.get('/vouchers', { without_stores: false, count: 1 })).json.data.vouchers[0].reward
        .store_list[0].store_id;
      const byStore = await client.pageAll({ store_id: storeId, without_stores: false });
      expect(byStore.length).toBeGreaterThan(0);
      expect(byStore.length).toBeLessThan(all().length);
      for (const v of byStore)
        expect((v.reward as { store_list: Array<{ store_id: string }> }).store_list.map((s) => s.store_id)).toContain(
          storeId,
        );
    });

    it('hides service vouchers unless include_service_vouchers=true', async () => {
      const hidden = await client.get('/vouchers', { count: 1000 });
      const shown = await client.get('/vouchers', { count: 1000, include_service_vouchers: true });
      expect(hidden.json.data.vouchers.some(isService)).toBe(false);
      expect(shown.json.data.vouchers.filter(isService).length).toBe(fake.store.all().filter(isService).length);
      expect(shown.json.data.total_items - hidden.json.data.total_items).toBe(
        fake.store.all().filter(isService).length,
      );
    });
  });

  describe('changes', () => {
    it('stamps updates with the local time of the project zone and keeps soft-deleted vouchers visible', async () => {
      clock = Date.UTC(2025, 10, 21, 12, 0, 0);
      const [target] = fake.store.all();
      const updated = fake.store.update(target!.voucher_id, { note: 'changed' });
      expect(updated.last_change).toBe('2025-11-21 13:00:00');
      const top = await client.get('/vouchers', { sort_field: 'last_change', sort_direction: 'DESC', count: 1 });
      expect(top.json.data.vouchers[0]).toMatchObject({ voucher_id: target!.voucher_id, note: 'changed' });

      clock += 1000;
      fake.store.softDelete(target!.voucher_id);
      const single = await client.get(`/vouchers/${target!.voucher_id}`);
      expect(single.json.data).toMatchObject({ state: 0, last_change: '2025-11-21 13:00:01' });

      expect(fake.store.hardDelete(target!.voucher_id)).toBe(true);
      expect((await client.get(`/vouchers/${target!.voucher_id}`)).status).toBe(404);
      expect(fake.store.get(target!.voucher_id)).toBeUndefined();
    });

    it('a voucher changed between two page requests moves to the top and shifts the others down', async () => {
      const query = { sort_field: 'last_change', sort_direction: 'DESC', count: 10 };
      const before = ids((await client.get('/vouchers', { ...query, count: 30 })).json.data.vouchers);
      clock += 60_000;
      removeHook = fake.store.onListRequest(({ n }) => {
        if (n === 2) fake.store.update(String(before[15]));
      });
      const page1 = ids((await client.get('/vouchers', { ...query, offset: 0 })).json.data.vouchers);
      const page2 = ids((await client.get('/vouchers', { ...query, offset: 10 })).json.data.vouchers);
      expect(page1).toEqual(before.slice(0, 10));
      expect(page2[0]).toBe(before[9]); // seen twice
      expect([...page1, ...page2]).not.toContain(before[15]); // moved above what was already read
    });

    it('a voucher deleted between two page requests makes the next page skip one', async () => {
      const query = { sort_field: 'last_change', sort_direction: 'ASC', count: 10 };
      const before = ids((await client.get('/vouchers', { ...query, count: 30 })).json.data.vouchers);
      const calls: number[] = [];
      removeHook = fake.store.onListRequest(async ({ n }) => {
        calls.push(n);
        await new Promise((resolve) => setImmediate(resolve));
        if (n === 2) fake.store.hardDelete(String(before[3]));
      });
      await client.get('/vouchers', { ...query, offset: 0 });
      const page2 = ids((await client.get('/vouchers', { ...query, offset: 10 })).json.data.vouchers);
      expect(page2).toEqual(before.slice(11, 21));
      removeHook();
      await client.get('/vouchers', query);
      expect(calls).toEqual([1, 2]);
    });

    it('inserts appear at the top of last_change DESC', async () => {
      clock += 60_000;
      const inserted = fake.store.insert({ note: 'new one' });
      const top = await client.get('/vouchers', { sort_field: 'last_change', sort_direction: 'DESC', count: 1 });
      expect(top.json.data.vouchers[0]).toEqual(inserted);
      expect(fake.store.get(inserted.voucher_id)).toEqual(inserted);
    });
  });

  describe('tokens', () => {
    it('answers 401 once tokens expire, and a new login works again', async () => {
      const caller = await careCloudClient(fake);
      expect((await caller.get('/vouchers', { count: 1 })).status).toBe(200);
      fake.store.expireTokens();
      const expired = await caller.get('/vouchers', { count: 1 });
      expect(expired.status).toBe(401);
      expect(expired.json.error.detail).toMatch(/expired/);
      await caller.relogin();
      expect((await caller.get('/vouchers', { count: 1 })).status).toBe(200);
    });

    it('tokens last tokenTtlMs on the fake clock, and valid_to is their local expiry', async () => {
      let now = Date.UTC(2025, 6, 1, 8, 0, 0);
      const short = createFakeCareCloud({ count: 10, now: () => now, tokenTtlMs: 60_000, rateLimits: null });
      await short.start();
      try {
        const caller = await careCloudClient(short);
        const login = await careCloudLogin(short);
        expect(login.json.data.valid_to).toBe('2025-07-01 10:01:00');
        now += 59_000;
        expect((await caller.get('/vouchers')).status).toBe(200);
        now += 2_000;
        expect((await caller.get('/vouchers')).status).toBe(401);
      } finally {
        await short.stop();
      }
    });
  });

  describe('malformed records', () => {
    beforeAll(() => client.relogin()); // the token tests expired every token

    it.each(CARECLOUD_MALFORMED_KINDS)('%s is served in the listing but kept out of all()', async (kind) => {
      clock += 60_000;
      const raw = fake.store.insertMalformed(kind);
      const direction = kind === 'zero-date' || kind === 'nonexistent-local-time' ? 'ASC' : 'DESC';
      const listing = await client.pageAll({ sort_field: 'last_change', sort_direction: direction }, 1000);
      const served = listing.find((v) => v.code === raw.code);
      expect(served).toEqual(raw);
      if (kind === 'zero-date') expect(listing[0]).toEqual(raw);
      if (direction === 'DESC') expect(listing[0]).toEqual(raw);
      expect(fake.store.all().some((v) => v.code === raw.code)).toBe(false);
      expect(fake.store.malformed()).toContainEqual(raw);

      const defect: Record<string, (r: Record<string, unknown>) => boolean> = {
        'missing-id': (r) => !('voucher_id' in r),
        'zero-date': (r) => r.last_change === '0000-00-00 00:00:00',
        'nonexistent-local-time': (r) => local(String(r.last_change)).toFormat(FORMAT) !== r.last_change,
        'comma-number': (r) => r.value === '12,50',
        'wrong-type': (r) => typeof r.customer_id === 'number',
        'oversized-string': (r) => String(r.code).length >= 300 && String(r.note).length >= 100_000,
      };
      expect(defect[kind]!(served!)).toBe(true);
    });
  });
});
