/**
 * An account with nothing in it, or nothing new: an incremental run asks the source once and writes
 * nothing — also when the account is still empty after its first run (no watermark yet).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createHarness, type Harness } from '../helpers/sync-harness.ts';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe('idle incremental runs', () => {
  it.each(['carecloud', 'cin7'] as const)(
    '%s: an empty account costs one request per run after the first',
    async (source) => {
      h = await createHarness({ careCloud: { count: 0 }, cin7: { count: 0 } });
      const fake = source === 'carecloud' ? h.careCloud : h.cin7;
      await h.sync(source);
      fake.stats.reset();
      const idle = await h.sync(source);
      expect(fake.stats.requests).toBe(1);
      expect(idle.counters).toMatchObject({ inserted: 0, updated: 0, rejected: 0 });
      expect(await h.db.voucher.count()).toBe(0);
      // Vouchers that arrive later are still read by the next incremental run.
      const added = source === 'carecloud' ? h.careCloud.store.insert().voucher_id : h.cin7.store.insert().code;
      await h.sync(source);
      expect((await h.vouchers(source)).map((v) => v.sourceId)).toEqual([added]);
    },
  );
});
