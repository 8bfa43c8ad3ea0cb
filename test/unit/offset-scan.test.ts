import { describe, expect, it } from 'vitest';
import { offsetScan } from '../../src/sync/offset-scan.ts';

/** A live list sorted by `t` (then by `seq`, a stable tie-break), like an API over a changing table. */
function createLiveList(count: number, direction: 'ASC' | 'DESC') {
  let seq = 0;
  let clock = 1_000_000;
  const rows = new Map<string, { id: string; t: number; seq: number }>();
  for (let i = 0; i < count; i++) {
    // Many equal timestamps: groups of 7 share one value.
    rows.set(`v${i}`, { id: `v${i}`, t: Math.floor(i / 7) * 1000, seq: seq++ });
  }
  const sorted = () =>
    [...rows.values()].sort((a, b) => (direction === 'DESC' ? b.t - a.t || b.seq - a.seq : a.t - b.t || a.seq - b.seq));
  return {
    rows,
    fetch: async (offset: number, count: number) => {
      const list = sorted();
      return { records: list.slice(offset, offset + count), total: list.length };
    },
    touch(id: string) {
      const row = rows.get(id)!;
      row.t = clock += 1000;
      row.seq = seq++;
    },
    remove(id: string) {
      rows.delete(id);
    },
    insert(id: string) {
      rows.set(id, { id, t: (clock += 1000), seq: seq++ });
    },
  };
}

function random(seed: number) {
  let s = seed;
  return () => (s = (s * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
}

async function scanWithChurn(
  seed: number,
  direction: 'ASC' | 'DESC',
  churn: { deletes: number; touches: number; inserts: number },
) {
  const list = createLiveList(500, direction);
  const rand = random(seed);
  const initial = new Set(list.rows.keys());
  const deleted = new Set<string>();
  const touched = new Set<string>();
  const seen = new Set<string>();
  let requests = 0;
  const pages = offsetScan({
    fetch: async (offset, count) => {
      requests++;
      // Change the list between page requests, as other users of the API would.
      const ids = [...list.rows.keys()];
      for (let i = 0; i < churn.deletes; i++) {
        const id = ids[Math.floor(rand() * ids.length)]!;
        if (list.rows.has(id)) {
          list.remove(id);
          deleted.add(id);
        }
      }
      for (let i = 0; i < churn.touches; i++) {
        const id = ids[Math.floor(rand() * ids.length)]!;
        if (list.rows.has(id)) {
          list.touch(id);
          touched.add(id);
        }
      }
      for (let i = 0; i < churn.inserts; i++) list.insert(`n${seed}-${requests}-${i}`);
      return list.fetch(offset, count);
    },
    pageSize: 50,
    overlap: 5,
    direction,
    keyOf: (r) => (r as { id: string }).id,
    cursorOf: (r) => (r as { t: number }).t,
    requireEmptyPage: true,
  });
  for await (const page of pages) for (const r of page.records) seen.add((r as { id: string }).id);
  return { initial, deleted, touched, seen, requests };
}

describe('offsetScan over a list that changes while we page', () => {
  it('reads every record once in a quiet list, stopping at the total', async () => {
    const list = createLiveList(120, 'DESC');
    const seen: string[] = [];
    let requests = 0;
    const pages = offsetScan({
      fetch: (o, c) => (requests++, list.fetch(o, c)),
      pageSize: 50,
      overlap: 5,
      direction: 'DESC',
      keyOf: (r) => (r as { id: string }).id,
      cursorOf: (r) => (r as { t: number }).t,
    });
    for await (const page of pages) seen.push(...page.records.map((r) => (r as { id: string }).id));
    expect(seen).toHaveLength(120);
    expect(new Set(seen).size).toBe(120);
    expect(requests).toBe(3);
  });

  it('re-reads one record a request while nothing shifts, and `overlap` once a shift was seen', async () => {
    const list = createLiveList(1000, 'ASC');
    const froms: number[] = [];
    const seen = new Set<string>();
    const pages = offsetScan({
      fetch: (o, c) => {
        froms.push(o);
        // Before the fourth request, two records already read vanish: the rows after them shift up by two.
        if (froms.length === 4) ['v0', 'v1'].forEach((id) => list.remove(id));
        return list.fetch(o, c);
      },
      pageSize: 100,
      overlap: 5,
      direction: 'ASC',
      keyOf: (r) => (r as { id: string }).id,
      cursorOf: (r) => (r as { t: number }).t,
      requireEmptyPage: true,
    });
    for await (const page of pages) for (const r of page.records) seen.add((r as { id: string }).id);
    expect([...list.rows.keys()].filter((id) => !seen.has(id))).toEqual([]);
    // Quiet: 99 new records a request. The shift costs one step back (the page from 297 no longer holds the
    // anchors; the page from 198 does), then each request re-reads 5.
    expect(froms.slice(0, 6)).toEqual([0, 99, 198, 297, 198, 293]);
    expect(froms[6]! - froms[5]!).toBe(95);
  });

  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
    it(`DESC (incremental): misses no record that stayed put, despite deletes pulling rows up (seed ${seed})`, async () => {
      const { initial, deleted, touched, seen } = await scanWithChurn(seed, 'DESC', {
        deletes: 3,
        touches: 2,
        inserts: 1,
      });
      // Records changed during the scan jump to the top, above where we are; the next incremental run
      // reads them (their last_change is above the new watermark). Everything else must be seen.
      const missed = [...initial].filter((id) => !deleted.has(id) && !touched.has(id) && !seen.has(id));
      expect(missed).toEqual([]);
    });

    it(`ASC (full): misses no surviving record, changed ones included (seed ${seed})`, async () => {
      const { initial, deleted, seen } = await scanWithChurn(seed, 'ASC', { deletes: 3, touches: 2, inserts: 1 });
      const missed = [...initial].filter((id) => !deleted.has(id) && !seen.has(id));
      expect(missed).toEqual([]);
    });
  }

  it('survives more deletions between two pages than the overlap, by stepping back', async () => {
    const { initial, deleted, touched, seen } = await scanWithChurn(42, 'DESC', {
      deletes: 20,
      touches: 0,
      inserts: 0,
    });
    expect(deleted.size).toBeGreaterThan(5);
    expect([...initial].filter((id) => !deleted.has(id) && !touched.has(id) && !seen.has(id))).toEqual([]);
  });

  it('survives more rows pushed down between two pages than a page holds, by stepping forward', async () => {
    const { initial, deleted, touched, seen } = await scanWithChurn(7, 'DESC', { deletes: 0, touches: 80, inserts: 0 });
    expect([...initial].filter((id) => !deleted.has(id) && !touched.has(id) && !seen.has(id))).toEqual([]);
  });

  it('stops an incremental scan at the first page past the threshold, leaving out its records beyond it', async () => {
    const list = createLiveList(500, 'DESC');
    let requests = 0;
    const threshold = 60 * 1000; // records with t < 60 s are older than the watermark minus lookback
    const pages = offsetScan({
      fetch: (o, c) => (requests++, list.fetch(o, c)),
      pageSize: 50,
      overlap: 5,
      direction: 'DESC',
      keyOf: (r) => (r as { id: string }).id,
      cursorOf: (r) => (r as { t: number }).t,
      isPastEnd: (record) => (record as { t: number }).t < threshold,
    });
    const seen: number[] = [];
    for await (const page of pages) seen.push(...page.records.map((r) => (r as { t: number }).t));
    expect(seen.filter((t) => t >= threshold)).toHaveLength(500 - 60 * 7);
    // The last page's records past the threshold are left out: earlier runs read them.
    expect(seen.filter((t) => t < threshold)).toEqual([]);
    expect(requests).toBe(Math.ceil((500 - 60 * 7 + 1) / 45));
  });

  it('resumes from saved progress without re-reading earlier pages', async () => {
    const list = createLiveList(200, 'ASC');
    const options = {
      fetch: (o: number, c: number) => list.fetch(o, c),
      pageSize: 50,
      overlap: 5,
      direction: 'ASC' as const,
      keyOf: (r: unknown) => (r as { id: string }).id,
      cursorOf: (r: unknown) => (r as { t: number }).t,
    };
    const first = offsetScan(options);
    const page1 = (await first.next()).value!;
    list.remove('v3'); // a deletion while the scan was paused
    const seen = new Set(page1.records.map((r: unknown) => (r as { id: string }).id));
    for await (const page of offsetScan({ ...options, start: page1.progress }))
      for (const r of page.records) seen.add((r as { id: string }).id);
    expect(seen.size).toBe(200);
  });

  it('starts over from the top when a resumed scan cannot find its place again', async () => {
    const list = createLiveList(300, 'DESC');
    const options = {
      fetch: (o: number, c: number) => list.fetch(o, c),
      pageSize: 20,
      overlap: 3,
      direction: 'DESC' as const,
      keyOf: (r: unknown) => (r as { id: string }).id,
      cursorOf: (r: unknown) => (r as { t: number }).t,
      requireEmptyPage: true,
    };
    const first = offsetScan(options);
    const page1 = (await first.next()).value!;
    // While the scan was stopped, 250 records changed: everything shifted down far past eight steps.
    for (let i = 299; i >= 50; i--) list.touch(`v${i}`);
    const seen = new Set<string>();
    for await (const page of offsetScan({ ...options, start: page1.progress }))
      for (const r of page.records) seen.add((r as { id: string }).id);
    expect(seen.size).toBe(300);
  });
});

describe('offsetScan as a slice of a larger ASC scan', () => {
  const base = {
    pageSize: 20,
    overlap: 3,
    direction: 'ASC' as const,
    keyOf: (r: unknown) => (r as { id: string }).id,
    cursorOf: (r: unknown) => (r as { t: number }).t,
  };
  const ids = (records: unknown[]) => records.map((r) => (r as { id: string }).id);

  it('started after rows below it moved away, still reads every row from its planned start value', async () => {
    const list = createLiveList(300, 'ASC');
    // Planned: this slice starts at offset 200 (the value there is shared by a group of 7 rows).
    const at = (await list.fetch(200, 1)).records[0]!.t;
    const expected = (await list.fetch(0, 300)).records.filter((r) => r.t >= at).map((r) => r.id);
    // Before it starts, 150 rows below it change: they move to the end, and its rows slide down by 150.
    for (let i = 0; i < 150; i++) list.touch(`v${i}`);
    let requests = 0;
    const seen: string[] = [];
    const pages = offsetScan({
      ...base,
      fetch: (o, c) => (requests++, list.fetch(o, c)),
      requireEmptyPage: true,
      slice: { start: { offset: 197, at } },
      start: { offset: 197, anchors: [] },
    });
    for await (const page of pages) seen.push(...ids(page.records));
    expect(expected.filter((id) => !seen.includes(id))).toEqual([]);
    // Four pages start too late (at 197, then 17, 34 and 68 rows further back each time); the fifth
    // step reaches the top, from where the list is read in pages of 20 that re-read 1, since no shift is seen
    // there (the total ends it).
    expect(requests).toBe(4 + 1 + Math.ceil((300 - 20) / 19));
  });

  it("reads past its end offset until it reaches the next slice's planned start value", async () => {
    const list = createLiveList(300, 'ASC');
    // Planned: this slice covers offsets 100 to 200, where the next one starts.
    const startAt = (await list.fetch(100, 1)).records[0]!.t;
    const nextAt = (await list.fetch(200, 1)).records[0]!.t;
    const expected = (await list.fetch(0, 300)).records.filter((r) => r.t >= startAt && r.t < nextAt).map((r) => r.id);
    // Before it is read, 50 rows with older values appear inside its range: its last rows move up past its end offset.
    const inside = (await list.fetch(150, 1)).records[0]!.t;
    for (let i = 0; i < 50; i++) list.rows.set(`old${i}`, { id: `old${i}`, t: inside, seq: 10_000 + i });
    const seen: string[] = [];
    const pages = offsetScan({
      ...base,
      fetch: (o, c) => list.fetch(o, c),
      slice: { endOffset: 203, endAt: nextAt },
      start: { offset: 97, anchors: [] },
    });
    for await (const page of pages) seen.push(...ids(page.records));
    expect(expected.length).toBe(98);
    expect(expected.filter((id) => !seen.includes(id))).toEqual([]);
    expect(seen.length).toBeLessThan(200);
  });

  it('does not take an anchor that changed (and moved to the end) for the place it was read at', async () => {
    const list = createLiveList(30, 'ASC');
    const options = { ...base, fetch: (o: number, c: number) => list.fetch(o, c), requireEmptyPage: true };
    const first = offsetScan(options);
    const page1 = (await first.next()).value!;
    // The last two rows read change while the scan is stopped: they move to the end of the list, which
    // the resumed scan's first page reaches.
    list.touch('v18');
    list.touch('v19');
    const seen = new Set(ids(page1.records));
    for await (const page of offsetScan({ ...options, start: page1.progress }))
      for (const id of ids(page.records)) seen.add(id);
    expect(seen.size).toBe(30);
  });

  it('starting inside a large group of equal values, finds its place by its planned anchors and reads little of the group before it', async () => {
    const list = createLiveList(0, 'ASC');
    for (let i = 0; i < 300; i++) list.rows.set(`v${i}`, { id: `v${i}`, t: i < 30 ? i * 1000 : 100_000, seq: i });
    const planned = (await list.fetch(197, 4)).records;
    // Before it starts, 20 rows below it change and move to the end.
    for (let i = 0; i < 20; i++) list.touch(`v${i}`);
    let requests = 0;
    const seen = new Set<string>();
    const pages = offsetScan({
      ...base,
      fetch: (o, c) => (requests++, list.fetch(o, c)),
      requireEmptyPage: true,
      slice: { start: { offset: 197, at: planned[3]!.t } },
      start: { offset: 200, anchors: planned.slice(0, 3).map((r) => ({ key: r.id, at: r.t })) },
    });
    for await (const page of pages) for (const id of ids(page.records)) seen.add(id);
    expect([...Array(100).keys()].map((i) => `v${200 + i}`).filter((id) => !seen.has(id))).toEqual([]);
    // Two pages miss the anchors (20 rows moved; the first request re-read one row, so a step is 19), the
    // third finds them at 177-179; the shift widens the overlap to 3: then pages of 17 new rows from 181
    // until a short one (the last full page ends at 300 exactly).
    expect(requests).toBe(3 + Math.ceil((300 - 181) / 17) + 1);
    expect([...seen].filter((id) => Number(id.slice(1)) < 170 && Number(id.slice(1)) >= 30)).toEqual([]);
  });

  it('started after the list shrank below its start, steps back until it finds its anchors', async () => {
    const list = createLiveList(100, 'ASC');
    const planned = (await list.fetch(77, 3)).records;
    for (let i = 0; i < 60; i++) list.remove(`v${i}`);
    const seen = new Set<string>();
    const pages = offsetScan({
      ...base,
      fetch: (o, c) => list.fetch(o, c),
      requireEmptyPage: true,
      start: { offset: 80, anchors: planned.map((r) => ({ key: r.id, at: r.t })) },
    });
    for await (const page of pages) for (const id of ids(page.records)) seen.add(id);
    expect([...Array(20).keys()].map((i) => `v${80 + i}`).filter((id) => !seen.has(id))).toEqual([]);
  });
});
