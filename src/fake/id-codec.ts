import { hash32, permute32, unpermute32 } from './random.ts';

/**
 * Turns a record's sequence number into an id or code that looks random and back again, so a lookup by id
 * needs no map of a million strings. `decode` re-encodes to reject ids that merely share the suffix.
 */
export interface IdCodec {
  encode(n: number): string;
  decode(text: string): number | undefined;
}

/** 26 lowercase hex characters like CareCloud's ids: '8', 17 characters of noise, 8 of permuted sequence. */
export function createHexIdCodec(seed: number, salt: number): IdCodec {
  const key = hash32(seed, salt);
  const hex = (value: number, width: number) => value.toString(16).padStart(width, '0').slice(-width);
  const encode = (n: number) =>
    `8${hex(hash32(key, n, 1), 8)}${hex(hash32(key, n, 2), 8)}${hex(hash32(key, n, 3), 1)}${hex(permute32(n, key), 8)}`;
  return {
    encode,
    decode(text) {
      if (!/^[0-9a-f]{26}$/.test(text)) return undefined;
      const n = unpermute32(Number.parseInt(text.slice(-8), 16), key);
      return encode(n) === text ? n : undefined;
    },
  };
}

/**
 * Codes made of a prefix chosen by the caller and a fixed-width suffix in `alphabet` that encodes the
 * permuted sequence number.
 */
export function createCodeCodec(
  seed: number,
  salt: number,
  alphabet: string,
  width: number,
  prefixOf: (n: number) => string,
): IdCodec {
  const key = hash32(seed, salt);
  const base = alphabet.length;
  if (base ** width < 2 ** 32) throw new RangeError('alphabet and width cannot hold 32 bits');
  const encode = (n: number) => {
    let value = permute32(n, key);
    let suffix = '';
    for (let i = 0; i < width; i++) {
      suffix = alphabet[value % base]! + suffix;
      value = Math.floor(value / base);
    }
    return prefixOf(n) + suffix;
  };
  return {
    encode,
    decode(text) {
      if (text.length < width) return undefined;
      let value = 0;
      for (const char of text.slice(-width)) {
        const digit = alphabet.indexOf(char);
        if (digit < 0) return undefined;
        value = value * base + digit;
      }
      if (value >= 2 ** 32) return undefined;
      const n = unpermute32(value, key);
      return encode(n) === text ? n : undefined;
    },
  };
}
