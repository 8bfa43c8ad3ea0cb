import { describe, expect, it } from 'vitest';
import { keysetScan } from '../../src/sync/keyset-scan.ts';

type Row = { code: string; t: number };

/** A server answering `where t >= from order by t asc`, paged; rows can vanish between requests. */
function server(rows: Row[]) {
  const requests: { from: string | null; page: number }[] = [];
  return {
    requests,
    fetch: async (from: string | null, page: number, size: number) => {
      requests.push({ from, page });
      const since = from === null ? -Infinity : Date.parse(from);
      const matching = rows.filter((r) => r.t >= since).sort((a, b) => a.t - b.t);
      return matching.slice((page - 1) * size, page * size);
    },
  };
}

const at = (second: number) => Date.UTC(2024, 0, 1) + second * 1000;

describe('keysetScan', () => {
  it('reads everything, moving by value, and ends on a short page', async () => {
    const rows = Array.from({ length: 23 }, (_, i) => ({ code: `c${i}`, t: at(i) }));
    const s = server(rows);
    const seen = new Set<string>();
    for await (const page of keysetScan({ fetch: s.fetch, rows: 10, positionOf: (r) => (r as Row).t, start: { from: null, page: 1 } })) {
      for (const r of page.records) seen.add((r as Row).code);
    }
    expect(seen.size).toBe(23);
    expect(s.requests[1]).toEqual({ from: '2024-01-01T00:00:09Z', page: 1 });
  });

  it('pages through more equal values than a page holds', async () => {
    const rows = [...Array.from({ length: 25 }, (_, i) => ({ code: `same${i}`, t: at(5) })), { code: 'later', t: at(9) }];
    const s = server(rows);
    const seen = new Set<string>();
    for await (const page of keysetScan({ fetch: s.fetch, rows: 10, positionOf: (r) => (r as Row).t, start: { from: null, page: 1 } })) {
      for (const r of page.records) seen.add((r as Row).code);
    }
    expect(seen.size).toBe(26);
  });

  it('misses nothing when rows vanish between pages', async () => {
    const rows = Array.from({ length: 40 }, (_, i) => ({ code: `c${i}`, t: at(i) }));
    const s = server(rows);
    const seen = new Set<string>();
    let n = 0;
    for await (const page of keysetScan({ fetch: s.fetch, rows: 10, positionOf: (r) => (r as Row).t, start: { from: null, page: 1 } })) {
      for (const r of page.records) seen.add((r as Row).code);
      rows.splice(n++, 3); // delete rows already read: offset paging would now skip three unread rows
    }
    const survivors = rows.map((r) => r.code);
    expect(survivors.filter((c) => !seen.has(c))).toEqual([]);
  });
});
