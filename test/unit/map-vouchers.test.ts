import { describe, expect, it } from 'vitest';
import type { CareCloudConfig } from '../../src/sources/carecloud/config.ts';
import type { Cin7Config } from '../../src/sources/cin7/config.ts';
import { mapCareCloudVoucher } from '../../src/sources/carecloud/map.ts';
import { createCareCloudVouchers } from '../../src/sources/carecloud/vouchers.ts';
import { createCin7Vouchers, mapCin7Voucher } from '../../src/sources/cin7/vouchers.ts';
import { FUTURE_TOLERANCE_MS, mapPage } from '../../src/sync/commit-page.ts';

const careCloud = {
  voucher_id: '8bb7345976bbc9ed20e5083dd6',
  customer_id: '81ceb8582e2d8dbb7e71b7273b',
  store_id: '86e05affc7a7abefcd513ab400',
  code: 'w7TU7KfeE',
  value: 3.49,
  applied_date: null,
  valid_from: '2024-07-10 21:33:13',
  valid_to: '2024-07-30T21:33:13',
  reward_group: '83cfee22eabfbbb15a14815e30',
  reward: { reward_id: 'r1', reward_group: 1 },
  created_at: '2024-07-01 08:00:00',
  last_change: '2024-10-27 02:15:00',
  state: 1,
  brand_new_field: { anything: true },
};

describe('CareCloud voucher mapping', () => {
  it('normalizes a voucher, reading local times in the project zone, keeping unknown fields in raw', () => {
    const result = mapCareCloudVoucher(careCloud, 'Europe/Prague');
    expect(result).toMatchObject({
      ok: true,
      row: {
        sourceId: '8bb7345976bbc9ed20e5083dd6',
        code: 'w7TU7KfeE',
        status: 'active',
        amount: '3.49',
        validFrom: '2024-07-10T19:33:13.000Z',
        validTo: '2024-07-30T19:33:13.000Z',
        sourceModifiedAt: '2024-10-27T00:15:00.000Z', // the repeated hour: the earlier instant
        isDeleted: false,
      },
    });
    expect(result.ok && result.row.raw).toBe(careCloud);
  });

  it('promotes store_id and the reward, null for the fields of Cin7', () => {
    const result = mapCareCloudVoucher({ ...careCloud, reward: { reward_id: 'r1', name: 'Birthday cake' } }, 'UTC');
    expect(result).toMatchObject({
      ok: true,
      row: { storeId: '86e05affc7a7abefcd513ab400', rewardId: 'r1', rewardName: 'Birthday cake' },
    });
    expect(result.ok && [result.row.voucherType ?? null, result.row.description ?? null]).toEqual([null, null]);
    expect(mapCareCloudVoucher({ ...careCloud, reward: 'r1' }, 'UTC')).toMatchObject({
      ok: true,
      row: { rewardId: null, rewardName: null },
    });
  });

  it('maps state 0 to deleted and 2 to inactive', () => {
    expect(mapCareCloudVoucher({ ...careCloud, state: 0 }, 'Europe/Prague')).toMatchObject({
      row: { status: 'deleted', isDeleted: true },
    });
    expect(mapCareCloudVoucher({ ...careCloud, state: 2 }, 'Europe/Prague')).toMatchObject({
      row: { status: 'inactive', isDeleted: false },
    });
  });

  it('rejects a record with every problem named', () => {
    const bad = {
      ...careCloud,
      voucher_id: undefined,
      value: '12,50',
      valid_to: '0000-00-00 00:00:00',
      last_change: '2024-03-31 02:30:00',
      state: 7,
    };
    const result = mapCareCloudVoucher(bad, 'Europe/Prague');
    expect(result.ok).toBe(false);
    const reason = !result.ok ? result.reject.reason : '';
    expect(reason).toContain('voucher_id: is missing');
    expect(reason).toContain('value: expected a number, got the string "12,50"');
    expect(reason).toContain('valid_to: "0000-00-00 00:00:00" is not a real date');
    expect(reason).toContain('last_change: "2024-03-31 02:30:00" does not exist in Europe/Prague');
    expect(reason).toContain('state: expected one of 0, 1, 2, got number 7');
    expect(!result.ok && result.reject.raw).toBe(bad);
  });

  it('rejects oversized codes and non-object records', () => {
    expect(mapCareCloudVoucher({ ...careCloud, code: 'x'.repeat(300) }, 'UTC')).toMatchObject({
      ok: false,
      reject: { sourceId: careCloud.voucher_id, reason: 'code: is 300 characters long, more than the 255 allowed' },
    });
    expect(mapCareCloudVoucher('nope', 'UTC')).toMatchObject({ ok: false, reject: { sourceId: null } });
  });
});

const cin7 = {
  createdDate: '2021-05-09T15:52:29.2618824+12:00',
  status: 'Active',
  code: 'GIFT-0001',
  type: 'Gift',
  description: 'Gift voucher',
  expiryDate: null,
  amount: 50.0,
  customerID: 1234,
  customerEmail: 'someone@example.com',
  redeemedCount: 1,
  redeemedCountLimit: 0,
  redeemedAmount: 12.5,
};

describe('Cin7 voucher mapping', () => {
  it('normalizes a voucher, keyed by code, with UTC times and exact amounts', () => {
    expect(mapCin7Voucher(cin7, 'UTC')).toMatchObject({
      ok: true,
      row: {
        sourceId: 'GIFT-0001',
        customerId: '1234',
        status: 'active',
        amount: '50',
        redeemedAmount: '12.5',
        sourceCreatedAt: '2021-05-09T03:52:29.261Z',
        sourceModifiedAt: null,
      },
    });
  });

  it('reads the documented PascalCase names too', () => {
    expect(
      mapCin7Voucher({ Code: 'P-1', Status: 'Inactive', Amount: 10, CreatedDate: '2021-05-09T15:52:29Z' }, 'UTC'),
    ).toMatchObject({ ok: true, row: { sourceId: 'P-1', status: 'inactive' } });
  });

  it('promotes Type and Description, and takes customer 0 for no customer', () => {
    const record = { Code: 'P-2', Status: 'Active', CustomerID: 0, Type: 'Credit Note', Description: 'Returned goods' };
    expect(mapCin7Voucher(record, 'UTC')).toMatchObject({
      ok: true,
      row: { customerId: null, voucherType: 'Credit Note', description: 'Returned goods' },
    });
  });

  it('never rejects a record for a promoted field: an odd one is null, a long one cut to its column', () => {
    const long = 'x'.repeat(300);
    const result = mapCin7Voucher({ ...cin7, type: { name: 'Gift' }, description: long }, 'UTC');
    expect(result).toMatchObject({ ok: true, row: { voucherType: null, description: long } });
    expect(mapCin7Voucher({ ...cin7, type: long }, 'UTC')).toMatchObject({
      ok: true,
      row: { voucherType: 'x'.repeat(255) },
    });
  });

  it('rejects a missing code and a comma amount', () => {
    const result = mapCin7Voucher({ ...cin7, code: undefined, amount: '12,50' }, 'UTC');
    expect(result).toMatchObject({ ok: false, reject: { sourceId: null } });
    expect(!result.ok && result.reject.reason).toBe(
      'code: is missing; amount: expected a number, got the string "12,50"',
    );
  });
});

describe('mapPage', () => {
  const now = new Date('2026-06-01T12:00:00.000Z');
  const stream = createCareCloudVouchers({ timezone: 'UTC' } as CareCloudConfig);
  const at = (last_change: string, voucher_id = 'v1') => ({ ...careCloud, voucher_id, last_change });

  it('rejects a record whose mapper throws, and maps the rest of the page', () => {
    const throwing = {
      ...stream,
      map: (raw: unknown) =>
        (raw as { boom?: boolean }).boom
          ? (() => {
              throw new TypeError('boom');
            })()
          : stream.map(raw),
    };
    const page = mapPage(throwing, [at('2026-01-01 00:00:00'), { boom: true }, at('2026-01-01 00:00:00', 'v2')], now);
    expect(page.rows.map((r) => r.sourceId)).toEqual(['v1', 'v2']);
    expect(page.rejects).toEqual([
      { sourceId: null, reason: 'the record could not be mapped: boom', raw: { boom: true } },
    ]);
    expect(page.fetched).toBe(3);
  });

  it(`rejects a modification time more than ${FUTURE_TOLERANCE_MS / 60_000} minutes after now, and keeps one within it`, () => {
    const page = mapPage(
      stream,
      [at('2026-06-01 12:59:59', 'soon'), at('2026-06-01 13:00:01', 'late'), at('2099-01-01 00:00:00', 'far')],
      now,
    );
    expect(page.rows.map((r) => r.sourceId)).toEqual(['soon']);
    expect(page.rejects.map((r) => [r.sourceId, r.reason])).toEqual([
      [
        'late',
        'sourceModifiedAt 2026-06-01T13:00:01.000Z is more than 60 minutes after the time of the sync (2026-06-01T12:00:00.000Z): a time from the future is not believed',
      ],
      ['far', expect.stringMatching(/^sourceModifiedAt 2099-01-01T00:00:00\.000Z is more than 60 minutes/)],
    ]);
    expect(page.implausibleAfter).toEqual(new Date('2026-06-01T13:00:00.000Z'));
    // Without a clock (look-ups of vanished vouchers) nothing is checked.
    expect(mapPage(stream, [at('2099-01-01 00:00:00')]).rows).toHaveLength(1);
  });

  it('checks the cursor of a stream whose cursor is the creation time (Cin7 CreatedDate)', () => {
    const cin7 = createCin7Vouchers({ timezone: 'UTC' } as Cin7Config);
    const page = mapPage(cin7, [{ code: 'FUTURE', createdDate: '2099-01-01T00:00:00Z', amount: 5 }], now);
    expect(page.rejects.map((r) => r.reason)).toEqual([
      expect.stringMatching(/^sourceCreatedAt 2099-01-01T00:00:00\.000Z is more than 60 minutes/),
    ]);
  });

  it('names what the rows were mapped with, so that a change of zone is noticed', () => {
    expect(stream.mappingKey).toBe('timezone=UTC');
    expect(createCin7Vouchers({ timezone: 'Pacific/Auckland' } as Cin7Config).mappingKey).toBe(
      'timezone=Pacific/Auckland',
    );
  });
});
