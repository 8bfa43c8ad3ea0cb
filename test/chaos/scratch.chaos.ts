import { setTimeout as sleep } from 'node:timers/promises';
import { expect, it } from 'vitest';
import { createHarness } from '../helpers/sync-harness.ts';
import { SourceChaos } from './source-chaos.ts';
import { compareAfterIncremental } from './ground-truth.ts';

it('deep scan under bursts', async () => {
  const h = await createHarness({ careCloud: { seed: 3, count: 300 }, env: { CARECLOUD_PAGE_SIZE: '20', CARECLOUD_PAGE_OVERLAP: '3', CARECLOUD_LOOKBACK: '2s' } });
  try {
    await h.sync('carecloud', 'full');
    await h.sync('carecloud', 'incremental');
    const chaos = new SourceChaos(h.careCloud, h.cin7, (l) => console.log('TRACE', l));
    chaos.start({ carecloud: new Set(), cin7: new Set() });
    for (let i = 0; i < 60; i++) {
      chaos.changeNow({ source: 'carecloud', op: 'update', pick: (i * 0.37) % 1 });
      await sleep(80);
    }
    for (const n of [2, 3, 4]) chaos.armBurst('carecloud', n, 8);
    const run = await h.sync('carecloud', 'incremental');
    console.log(JSON.stringify(run.counters), JSON.stringify(chaos.changes));
    const mismatches = await compareAfterIncremental({ db: h.db, source: 'carecloud', careCloud: h.careCloud, cin7: h.cin7 });
    console.log(mismatches.length, mismatches.slice(0, 3));
    expect(mismatches).toEqual([]);
  } finally {
    await h.close();
  }
});
