import { afterEach, describe, expect, it } from 'vitest';
import { createHarness, type Harness } from '../helpers/sync-harness.ts';
import { withJson } from './hostile-server.ts';

describe('the hostile proxy', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('forwards unchanged until switched, then applies its behaviour', async () => {
    h = await createHarness({ hostile: true, careCloud: { count: 300 }, cin7: { count: 50 } });
    await h.sync('cin7');
    expect((await h.vouchers('cin7')).length).toBe(50);
    expect(h.hostile.cin7.requests.length).toBeGreaterThan(0);
    h.hostile.carecloud.set(async ({ request, forward }) => {
      const answer = await forward();
      if (request.path.endsWith('/vouchers') && answer.json)
        return withJson(answer, { ...(answer.json as object), marked: true });
      return answer;
    });
    const result = await h.sync('carecloud', 'full');
    expect(result.counters.fetched).toBeGreaterThan(0);
  });
});
