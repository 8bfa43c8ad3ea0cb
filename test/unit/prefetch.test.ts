import { describe, expect, it } from 'vitest';
import { prefetched } from '../../src/sync/prefetch.ts';

describe('prefetched', () => {
  it('yields the same pages in the same order, fetching at most one ahead', async () => {
    const fetched: number[] = [];
    async function* pages() {
      for (let i = 1; i <= 4; i++) {
        fetched.push(i);
        yield i;
      }
    }
    const seen: number[] = [];
    for await (const page of prefetched(pages())) {
      // While the caller handles page n, page n+1 (and no more) has been fetched.
      await new Promise((resolve) => setTimeout(resolve, 5));
      expect(fetched.at(-1)).toBe(Math.min(page + 1, 4));
      seen.push(page);
    }
    expect(seen).toEqual([1, 2, 3, 4]);
  });

  it('raises a failed fetch when its page is asked for, after the pages before it', async () => {
    async function* pages() {
      yield 1;
      throw new Error('page 2 failed');
    }
    const seen: number[] = [];
    await expect(
      (async () => {
        for await (const page of prefetched(pages())) seen.push(page);
      })(),
    ).rejects.toThrow('page 2 failed');
    expect(seen).toEqual([1]);
  });
});
