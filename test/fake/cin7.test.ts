import { DateTime } from 'luxon';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createFakeCin7, type Cin7Voucher } from '../../src/fake/cin7.ts';
import { CIN7_MALFORMED_KINDS } from '../../src/fake/cin7-store.ts';
import { cin7Client } from './fake-clients.ts';

const ANCHOR = Date.UTC(2025, 4, 15, 0, 0, 0);
const instant = (date: unknown) => {
  const text = String(date);
  return DateTime.fromISO(text, { zone: 'UTC' }).toMillis() + Number(text.slice(23, 27).padEnd(4, '0')) / 10_000;
};
const codes = (vouchers: Array<Record<string, unknown>>) => vouchers.map((v) => v.code);

describe('fake Cin7 Omni', () => {
  let clock = ANCHOR;
  const fake = createFakeCin7({ seed: 5, count: 1000, anchor: ANCHOR, now: () => clock, rateLimits: null });
  const client = cin7Client(fake);
  let removeHook: (() => void) | undefined;

  beforeAll(() => fake.start());
  afterEach(() => removeHook?.());
  afterAll(() => fake.stop());

  describe('auth', () => {
    it('answers 401 without or with wrong credentials, 403 when the connection may not read vouchers', async () => {
      const none = await fetch(`${fake.url}/v1/Voucher`);
      expect(none.status).toBe(401);
      expect(none.headers.get('www-authenticate')).toMatch(/^Basic/);
      expect((await cin7Client(fake, { username: 'demo', apiKey: 'wrong' }).get()).status).toBe(401);

      const forbidden = createFakeCin7({ count: 5, forbidden: true, rateLimits: null });
      await forbidden.start();
      try {
        expect((await cin7Client(forbidden).get()).status).toBe(403);
      } finally {
        await forbidden.stop();
      }
    });
  });

  describe('data', () => {
    const all = fake.store.all();

    it('is the same for the same seed, different for another', () => {
      expect(createFakeCin7({ seed: 5, count: 1000, anchor: ANCHOR }).store.all()).toEqual(all);
      expect(codes(createFakeCin7({ seed: 6, count: 1000, anchor: ANCHOR }).store.all())).not.toEqual(codes(all));
    });

    it('writes dates with seven fractional digits and the Auckland offset of the moment, a few without offset', () => {
      const withOffset = all.filter((v) => /[+-]\d{2}:\d{2}$/.test(v.createdDate));
      for (const v of all)
        expect(v.createdDate).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{7}([+-]\d{2}:\d{2})?$/);
      for (const v of withOffset) {
        const parsed = DateTime.fromISO(v.createdDate, { setZone: true });
        expect(parsed.offset).toBe(parsed.setZone('Pacific/Auckland').offset);
      }
      const offsets = new Set(withOffset.map((v) => v.createdDate.slice(-6)));
      expect(offsets).toEqual(new Set(['+12:00', '+13:00']));
      expect(all.length - withOffset.length).toBeGreaterThan(0);
      expect(all.length - withOffset.length).toBeLessThan(50);
    });

    it('has many vouchers with the very same createdDate, and statuses that follow the balance', () => {
      const perDate = new Map<string, number>();
      for (const v of all) perDate.set(v.createdDate, (perDate.get(v.createdDate) ?? 0) + 1);
      expect(Math.max(...perDate.values())).toBeGreaterThan(100);
      for (const v of all) expect(v.status).toBe(v.redeemedAmount >= v.amount ? 'Inactive' : 'Active');
      expect(new Set(all.map((v) => v.status))).toEqual(new Set(['Active', 'Inactive']));
      expect(Object.keys(all[0]!)).toEqual([
        'createdDate',
        'status',
        'code',
        'type',
        'description',
        'expiryDate',
        'amount',
        'customerID',
        'customerEmail',
        'redeemedCount',
        'redeemedCountLimit',
        'redeemedAmount',
      ]);
    });
  });

  describe('paging', () => {
    it('serves 50 rows by default, at most 250, and [] past the end', async () => {
      expect((await client.get()).json).toHaveLength(50);
      expect((await client.get({ rows: 1000 })).json).toHaveLength(250);
      expect((await client.get({ rows: 250, page: 5 })).json).toHaveLength(0);
      expect((await client.get({ rows: 0 })).status).toBe(400);
      expect((await client.get({ page: 0 })).status).toBe(400);
    });

    it('pages through every voucher once, in CreatedDate order, with ties in one stable order', async () => {
      const ordered = await client.pageAll({ order: 'CreatedDate' }, 100);
      expect(new Set(codes(ordered))).toEqual(new Set(codes(fake.store.all())));
      expect(ordered).toHaveLength(fake.store.size);
      const instants = ordered.map((v) => instant(v.createdDate));
      expect(instants).toEqual([...instants].sort((a, b) => a - b));
      const again = await client.pageAll({ order: 'createddate asc' }, 250);
      expect(codes(again)).toEqual(codes(ordered));
      const desc = await client.pageAll({ order: 'CreatedDate DESC' }, 250);
      expect(codes(desc)).toEqual(codes(ordered).reverse());
    });

    it('a window on CreatedDate returns exactly the vouchers created in it', async () => {
      const from = '2025-01-01T00:00:00Z';
      const to = '2025-03-01T00:00:00.5+13:00';
      const got = await client.pageAll({
        where: `CreatedDate>='${from}' AND createddate < '${to}'`,
        order: 'CreatedDate',
      });
      const expected = fake.store
        .all()
        .filter((v) => instant(v.createdDate) >= Date.parse(from) && instant(v.createdDate) < Date.parse(to));
      expect(expected.length).toBeGreaterThan(50);
      expect(new Set(codes(got))).toEqual(new Set(codes(expected)));
    });

    it('a window of one whole UTC second returns the vouchers of that second, the bulk import sharing one date', async () => {
      const byDate = new Map<string, number>();
      for (const v of fake.store.all()) byDate.set(v.createdDate, (byDate.get(v.createdDate) ?? 0) + 1);
      const [date, size] = [...byDate].sort((a, b) => b[1] - a[1])[0]!;
      expect(size).toBeGreaterThan(100);
      const second = Math.floor(instant(date) / 1000) * 1000;
      const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');
      const got = await client.pageAll(
        { where: `CreatedDate>='${iso(second)}' AND CreatedDate<'${iso(second + 1000)}'`, order: 'CreatedDate ASC' },
        50,
      );
      const expected = fake.store.all().filter((v) => Math.floor(instant(v.createdDate) / 1000) * 1000 === second);
      expect(new Set(codes(got))).toEqual(new Set(codes(expected)));
      expect(got).toHaveLength(expected.length);
    });

    it('one row per page answers the n-th voucher in CreatedDate order, with only the fields asked for', async () => {
      const ordered = await client.pageAll({ order: 'CreatedDate ASC' }, 250);
      for (const n of [1, 2, 500, ordered.length]) {
        expect((await client.get({ order: 'CreatedDate ASC', rows: 1, page: n, fields: 'CreatedDate' })).json).toEqual([
          { createdDate: ordered[n - 1]!.createdDate },
        ]);
      }
      expect((await client.get({ order: 'CreatedDate ASC', rows: 1, page: ordered.length + 1 })).json).toEqual([]);
    });

    it('a voucher deleted between two page requests makes the next page skip one', async () => {
      const before = codes((await client.get({ order: 'CreatedDate', rows: 30 })).json);
      removeHook = fake.store.onListRequest(({ n }) => {
        if (n === 2) fake.store.hardDelete(String(before[2]));
      });
      await client.get({ order: 'CreatedDate', rows: 10, page: 1 });
      const page2 = codes((await client.get({ order: 'CreatedDate', rows: 10, page: 2 })).json);
      expect(page2).toEqual(before.slice(11, 21));
    });

    it('new vouchers append at the end of a CreatedDate window', async () => {
      clock = ANCHOR + 60_000;
      const since = DateTime.fromMillis(ANCHOR, { zone: 'UTC' }).toISO();
      expect((await client.get({ where: `CreatedDate>='${since}'`, order: 'CreatedDate' })).json).toEqual([]);
      const first = fake.store.insert();
      clock += 1000;
      const second = fake.store.insert({ description: 'second' });
      const window = (await client.get({ where: `CreatedDate>='${since}'`, order: 'CreatedDate' })).json;
      expect(codes(window)).toEqual([first.code, second.code]);
      expect(first.createdDate).toMatch(/^2025-05-15T12:01:00\.\d{7}\+12:00$/);
    });
  });

  describe('where, order, fields, code', () => {
    it('filters with AND on numbers and text (case-insensitive) and orders on several fields', async () => {
      const got = await client.pageAll({ where: "Amount >= 100 AND status = 'active'", order: 'Amount DESC, Code' });
      const expected = fake.store
        .all()
        .filter((v) => v.amount >= 100 && v.status === 'Active')
        .sort((a, b) => b.amount - a.amount || (a.code.toLowerCase() < b.code.toLowerCase() ? -1 : 1));
      expect(codes(got)).toEqual(codes(expected));
    });

    it.each([
      ['an unknown field', "Colour = 'red'"],
      ['OR', "Status = 'Active' OR Amount > 1"],
      ['an injection attempt', "Code = 'x'; DROP TABLE vouchers"],
      ['an unquoted date', 'CreatedDate >= 2021-01-01'],
      ['a date that is not one', "CreatedDate >= 'yesterday'"],
      ['a dangling AND', 'Amount > 1 AND'],
      ['text for a number', "Amount > '1'"],
    ])('answers 400 with a message for %s', async (_label, where) => {
      const answer = await client.get({ where });
      expect(answer.status).toBe(400);
      expect(answer.json.message).toMatch(/where/i);
    });

    it('answers 400 for an unknown order or fields entry', async () => {
      expect((await client.get({ order: 'Colour' })).status).toBe(400);
      expect((await client.get({ order: 'Amount; DELETE' })).status).toBe(400);
      expect((await client.get({ fields: 'code,colour' })).status).toBe(400);
    });

    it('returns only the asked fields', async () => {
      const answer = await client.get({ fields: 'Code, createdDate', rows: 5 });
      for (const v of answer.json) expect(Object.keys(v).sort()).toEqual(['code', 'createdDate']);
    });

    it('looks vouchers up by exact code', async () => {
      const target = fake.store.all()[7]!;
      expect((await client.get({ code: target.code })).json).toEqual([target]);
      expect((await client.get({ code: target.code.toLowerCase() })).json).toEqual([]);
    });
  });

  describe('changes', () => {
    it('a redemption changes balance and status but no date, and keeps the voucher in place', async () => {
      const target = fake.store.all().find((v) => v.redeemedAmount === 0 && v.amount <= 100)!;
      const orderBefore = codes(await client.pageAll({ order: 'CreatedDate' }));
      const redeemed = fake.store.redeem(target.code, target.amount);
      expect(redeemed).toEqual({ ...target, redeemedAmount: target.amount, redeemedCount: 1, status: 'Inactive' });
      expect(codes(await client.pageAll({ order: 'CreatedDate' }))).toEqual(orderBefore);
      expect((await client.get({ code: target.code })).json).toEqual([redeemed]);
    });

    it('update and hard delete', async () => {
      const target = fake.store.all()[3]!;
      const updated: Cin7Voucher = fake.store.update(target.code, { description: 'edited' });
      expect(updated).toEqual({ ...target, description: 'edited' });
      expect(fake.store.hardDelete(target.code)).toBe(true);
      expect(fake.store.get(target.code)).toBeUndefined();
      expect((await client.get({ code: target.code })).json).toEqual([]);
    });

    it.each(CIN7_MALFORMED_KINDS)('serves a malformed record (%s) but keeps it out of all()', async (kind) => {
      const raw = fake.store.insertMalformed(kind);
      const everything = await client.pageAll({});
      expect(everything).toContainEqual(raw);
      expect(fake.store.malformed()).toContainEqual(raw);
      expect(fake.store.all()).not.toContainEqual(raw);
      const defect: Record<string, (r: Record<string, unknown>) => boolean> = {
        'missing-code': (r) => !('code' in r),
        'zero-date': (r) => r.createdDate === '0000-00-00T00:00:00',
        'comma-number': (r) => r.amount === '12,50',
        'wrong-type': (r) => typeof r.customerID === 'string',
        'oversized-string': (r) => String(r.code).length >= 300,
      };
      expect(defect[kind]!(raw)).toBe(true);
    });

    it('churn changes the data a little', () => {
      const before = fake.store.all();
      fake.store.churn(20);
      const after = fake.store.all();
      expect(after).not.toEqual(before);
      const changedOrNew = after.filter(
        (v) => JSON.stringify(v) !== JSON.stringify(before.find((b) => b.code === v.code)),
      );
      expect(changedOrNew.length).toBeGreaterThan(0);
      expect(changedOrNew.length).toBeLessThanOrEqual(20);
    });
  });
});
