import { afterEach, describe, expect, it } from 'vitest';
import { createHarness, type Harness } from '../helpers/sync-harness.ts';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
});

describe('CareCloud around the autumn clock change', () => {
  it('reads a change made in the repeated hour even when it sorts below older records of that hour', async () => {
    // Prague falls back from 03:00 CEST to 02:00 CET at 2024-10-27T01:00Z: wall times 02:00-03:00 happen twice.
    let now = Date.parse('2024-10-27T00:30:00Z');
    h = await createHarness({ careCloud: { now: () => now, anchor: Date.parse('2024-10-20T00:00:00Z'), count: 300 } });
    const store = h.careCloud.store;
    // First pass through the hour: 150 changes at walls 02:30-02:44, then one at 02:55.
    for (let i = 0; i < 150; i++) {
      now = Date.parse('2024-10-27T00:30:00Z') + i * 5_000;
      store.insert();
    }
    now = Date.parse('2024-10-27T00:55:00Z');
    store.insert();
    const clock = { now: () => new Date(now + 60_000) };
    await h.sync('carecloud', 'incremental', { clock });

    // Second pass: at 01:20Z the wall clock reads 02:20 again. A voucher changed now sorts (DESC by wall
    // time) below the 150 changes of the first pass, more than a page away from the top.
    now = Date.parse('2024-10-27T01:20:00Z');
    const old = store.all().find((v) => v.last_change < '2024-10-21')!;
    store.update(old.voucher_id, { note: 'changed in the repeated hour' });
    expect(store.get(old.voucher_id)!.last_change).toBe('2024-10-27 02:20:00');
    await h.sync('carecloud', 'incremental', { clock });

    const row = await h.db.voucher.findFirstOrThrow({ where: { sourceId: old.voucher_id } });
    expect((row.raw as { note: string }).note).toBe('changed in the repeated hour');
  });
});
