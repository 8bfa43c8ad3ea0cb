/**
 * Seeded pseudo-random numbers. Every fake record is rebuilt on demand from (seed, index), so the fakes can
 * serve a million records without keeping them. Hand-written on purpose: mulberry32 and a 32-bit integer
 * hash are a few lines each, and we need cheap independent streams per record, which the PRNG packages on
 * npm do not offer without allocating a generator object per call anyway.
 */

export interface Random {
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [min, max], both included. */
  int(min: number, max: number): number;
  pick<T>(items: readonly T[]): T;
  chance(probability: number): boolean;
}

/** The murmur3 finalizer: spreads every input bit over the whole 32-bit word. */
function fmix32(value: number): number {
  let h = value >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A well-mixed unsigned 32-bit hash of a few integers (each taken modulo 2^32). */
export function hash32(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const part of parts) h = fmix32(h ^ fmix32(Math.imul(part >>> 0, 0xcc9e2d51) + 0x6b43a9b5));
  return h;
}

/** mulberry32: a fast 32-bit generator, plenty for test data. */
export function createRandom(seed: number): Random {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    pick: <T>(items: readonly T[]): T => {
      if (items.length === 0) throw new RangeError('cannot pick from an empty list');
      return items[Math.floor(next() * items.length)] as T;
    },
    chance: (probability) => next() < probability,
  };
}

/**
 * A keyed bijection on 32-bit integers (a 4-round Feistel network). Ids and codes embed permute32(seq) so
 * they look random yet decode back to the record's sequence number in O(1).
 */
export function permute32(value: number, key: number): number {
  let left = (value >>> 16) & 0xffff;
  let right = value & 0xffff;
  for (let round = 0; round < 4; round++) {
    const next = left ^ (hash32(key, round, right) & 0xffff);
    left = right;
    right = next;
  }
  return ((left << 16) | right) >>> 0;
}

export function unpermute32(value: number, key: number): number {
  let left = (value >>> 16) & 0xffff;
  let right = value & 0xffff;
  for (let round = 3; round >= 0; round--) {
    const previous = right ^ (hash32(key, round, left) & 0xffff);
    right = left;
    left = previous;
  }
  return ((left << 16) | right) >>> 0;
}
