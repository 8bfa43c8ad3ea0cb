/**
 * Records ordered by (key, seq), with rank queries in O(log n), for paging a million generated records.
 *
 * The `count` generated records are sorted once into typed arrays (the base). A record that changes or is
 * added moves to a small sorted overlay; its base slot is marked dead in a Fenwick tree, so "the k-th live
 * record" stays a logarithmic query. Mutations are few next to the base, so the overlay stays small.
 */
export interface OrderedIndex {
  /** Live entries. */
  readonly size: number;
  has(seq: number): boolean;
  /** True when the entry still sits at its generated place (never moved, never deleted). */
  inBase(seq: number): boolean;
  /** Inserts the entry or moves it to a new key. */
  set(seq: number, key: number): void;
  delete(seq: number): boolean;
  /** Sequence numbers of the entries that left the base (changed, added), in order. */
  overlaySeqs(): number[];
  /**
   * A snapshot for one request. `keep` filters overlay entries only: a caller that needs a filter must move
   * every base entry the filter would drop into the overlay first.
   */
  view(keep?: (seq: number) => boolean): IndexView;
}

export interface IndexView {
  readonly size: number;
  /** Ascending rank of the first entry whose key is >= key (inclusive) or > key. */
  rankOfKey(key: number, inclusive: boolean): number;
  /** Sequence numbers of the entries with ascending ranks in [start, end). */
  slice(start: number, end: number): number[];
}

const compare = (keyA: number, seqA: number, keyB: number, seqB: number) =>
  keyA < keyB ? -1 : keyA > keyB ? 1 : seqA - seqB;

/** First index in [0, length) whose (key, seq) is >= (key, seq), over parallel sorted arrays. */
function lowerBound(
  keys: ArrayLike<number>,
  seqs: ArrayLike<number>,
  length: number,
  key: number,
  seq: number,
): number {
  let low = 0;
  let high = length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (compare(keys[middle]!, seqs[middle]!, key, seq) < 0) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** First index whose key is >= key (inclusive) or > key. */
function keyBound(keys: ArrayLike<number>, length: number, key: number, inclusive: boolean): number {
  let low = 0;
  let high = length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    const k = keys[middle]!;
    if (inclusive ? k < key : k <= key) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** @param keyOf the key of generated record `seq`, for seq in [0, count) */
export function createOrderedIndex(count: number, keyOf: (seq: number) => number): OrderedIndex {
  const order = new Int32Array(count);
  const sortedKeys = new Float64Array(count);
  const posOf = new Int32Array(count);
  {
    const keys = new Float64Array(count);
    for (let i = 0; i < count; i++) {
      keys[i] = keyOf(i);
      order[i] = i;
    }
    order.sort((a, b) => compare(keys[a]!, a, keys[b]!, b));
    for (let p = 0; p < count; p++) {
      sortedKeys[p] = keys[order[p]!]!;
      posOf[order[p]!] = p;
    }
  }
  const dead = new Uint8Array(count);
  const tree = new Int32Array(count + 1);
  let deadCount = 0;
  let topStep = 1;
  while (topStep * 2 <= count) topStep *= 2;

  const overlayKeys: number[] = [];
  const overlaySeqs: number[] = [];
  const overlayKeyOf = new Map<number, number>();

  const isBaseSeq = (seq: number) => Number.isInteger(seq) && seq >= 0 && seq < count;
  const killBase = (seq: number) => {
    const p = posOf[seq]!;
    if (dead[p]) return false;
    dead[p] = 1;
    deadCount++;
    for (let i = p + 1; i <= count; i += i & -i) tree[i]!++;
    return true;
  };
  const deadBefore = (p: number) => {
    let sum = 0;
    for (let i = p; i > 0; i -= i & -i) sum += tree[i]!;
    return sum;
  };
  /** Base position of the r-th (0-based) live base entry, or `count` when there is none. */
  const liveSelect = (r: number) => {
    if (r >= count - deadCount) return count;
    let pos = 0;
    let remaining = r + 1;
    for (let step = topStep; step > 0; step >>= 1) {
      const next = pos + step;
      if (next > count) continue;
      const live = step - tree[next]!;
      if (live < remaining) {
        pos = next;
        remaining -= live;
      }
    }
    return pos;
  };
  const removeOverlay = (seq: number) => {
    const key = overlayKeyOf.get(seq);
    if (key === undefined) return false;
    const j = lowerBound(overlayKeys, overlaySeqs, overlayKeys.length, key, seq);
    overlayKeys.splice(j, 1);
    overlaySeqs.splice(j, 1);
    overlayKeyOf.delete(seq);
    return true;
  };

  const view = (keep?: (seq: number) => boolean): IndexView => {
    let keys = overlayKeys;
    let seqs = overlaySeqs;
    if (keep) {
      keys = [];
      seqs = [];
      overlaySeqs.forEach((seq, j) => {
        if (!keep(seq)) return;
        keys.push(overlayKeys[j]!);
        seqs.push(seq);
      });
    }
    const m = keys.length;
    const size = count - deadCount + m;
    const mergedRankOfOverlay = (j: number) => {
      const p = lowerBound(sortedKeys, order, count, keys[j]!, seqs[j]!);
      return j + p - deadBefore(p);
    };
    return {
      size,
      rankOfKey(key, inclusive) {
        const p = keyBound(sortedKeys, count, key, inclusive);
        return p - deadBefore(p) + keyBound(keys, m, key, inclusive);
      },
      slice(start, end) {
        const from = Math.max(0, start);
        const to = Math.min(size, end);
        const out: number[] = [];
        if (from >= to) return out;
        // j = overlay entries ranked before `from`: the smallest j whose merged rank is >= from.
        let low = 0;
        let high = m;
        while (low < high) {
          const middle = (low + high) >>> 1;
          if (mergedRankOfOverlay(middle) < from) low = middle + 1;
          else high = middle;
        }
        let j = low;
        let p = liveSelect(from - j);
        while (out.length < to - from) {
          while (p < count && dead[p]) p++;
          const takeBase = p < count && (j >= m || compare(sortedKeys[p]!, order[p]!, keys[j]!, seqs[j]!) < 0);
          if (takeBase) out.push(order[p++]!);
          else out.push(seqs[j++]!);
        }
        return out;
      },
    };
  };

  return {
    get size() {
      return count - deadCount + overlayKeys.length;
    },
    has: (seq) => overlayKeyOf.has(seq) || (isBaseSeq(seq) && !dead[posOf[seq]!]),
    inBase: (seq) => isBaseSeq(seq) && !dead[posOf[seq]!],
    set(seq, key) {
      if (isBaseSeq(seq)) killBase(seq);
      removeOverlay(seq);
      const j = lowerBound(overlayKeys, overlaySeqs, overlayKeys.length, key, seq);
      overlayKeys.splice(j, 0, key);
      overlaySeqs.splice(j, 0, seq);
      overlayKeyOf.set(seq, key);
    },
    delete: (seq) => removeOverlay(seq) || (isBaseSeq(seq) && killBase(seq)),
    overlaySeqs: () => [...overlaySeqs],
    view,
  };
}
