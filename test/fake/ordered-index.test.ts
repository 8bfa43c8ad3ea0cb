import { describe, expect, it } from 'vitest';
import { createOrderedIndex } from '../../src/fake/ordered-index.ts';
import { createRandom } from '../../src/fake/random.ts';

/** The obvious O(n log n) answer the index must agree with. */
function sortedModel(model: Map<number, number>, keep: (seq: number) => boolean = () => true) {
  return [...model]
    .filter(([seq]) => keep(seq))
    .sort(([seqA, keyA], [seqB, keyB]) => keyA - keyB || seqA - seqB)
    .map(([seq]) => seq);
}

describe('createOrderedIndex', () => {
  it('agrees with a plain sort through thousands of random moves, inserts and deletes', () => {
    const random = createRandom(99);
    const count = 300;
    // Few distinct keys, so that ties (ordered by seq) are everywhere.
    const keyOf = (seq: number) => (seq * 7919) % 37;
    const index = createOrderedIndex(count, keyOf);
    const model = new Map<number, number>(Array.from({ length: count }, (_, seq) => [seq, keyOf(seq)]));
    let nextSeq = count;
    for (let step = 0; step < 3000; step++) {
      const action = random.next();
      const seq = random.int(0, nextSeq);
      if (action < 0.45) {
        const key = random.int(-2, 40);
        index.set(seq, key);
        model.set(seq, key);
        if (seq === nextSeq) nextSeq++;
      } else if (action < 0.7) {
        expect(index.delete(seq)).toBe(model.delete(seq));
      } else {
        const keep = (s: number) => s % 3 !== 0 || !index.overlaySeqs().includes(s);
        const expected = sortedModel(model);
        const view = index.view();
        expect(index.size).toBe(model.size);
        expect(view.size).toBe(model.size);
        const start = random.int(-5, model.size + 5);
        const end = start + random.int(0, 40);
        expect(view.slice(start, end)).toEqual(expected.slice(Math.max(0, start), Math.max(0, end)));
        const key = random.int(-3, 41);
        expect(view.rankOfKey(key, true)).toBe(expected.filter((s) => model.get(s)! < key).length);
        expect(view.rankOfKey(key, false)).toBe(expected.filter((s) => model.get(s)! <= key).length);
        const filtered = index.view(keep);
        expect(filtered.slice(0, filtered.size)).toEqual(sortedModel(model, keep));
        expect(index.has(seq)).toBe(model.has(seq));
      }
    }
    expect(index.view().slice(0, index.size)).toEqual(sortedModel(model));
  });

  it('keeps one order for equal keys: by sequence number', () => {
    const index = createOrderedIndex(5, () => 7);
    index.set(2, 7);
    expect(index.view().slice(0, 5)).toEqual([0, 1, 2, 3, 4]);
    index.set(9, 7);
    index.set(1, 8);
    expect(index.view().slice(0, 10)).toEqual([0, 2, 3, 4, 9, 1]);
  });

  it('handles an empty base', () => {
    const index = createOrderedIndex(0, () => 0);
    expect(index.view().slice(0, 10)).toEqual([]);
    index.set(0, 5);
    expect(index.view().slice(0, 10)).toEqual([0]);
    expect(index.view().rankOfKey(5, false)).toBe(1);
  });
});
