import { describe, expect, it } from 'vitest';
import {
  keysetScan,
  keysetStart,
  planWindows,
  type KeysetProgress,
  type KeysetRequest,
  type KeysetScanOptions,
} from '../../src/sync/keyset-scan.ts';

type Row = { code: string; t: number };

const at = (second: number, ms = 0) => Date.UTC(2024, 0, 1) + second * 1000 + ms;
const iso = (second: number) => new Date(at(second)).toISOString().replace('.000Z', 'Z');

/**
 * A server answering `where t >= from and t < before order by t asc`, paged by number. Rows can vanish
 * or appear between requests (`beforeRequest`); `ties` decides the order of equal values per request.
 */
function server(
  rows: Row[],
  options: {
    ties?: (request: number) => 'asc' | 'desc';
    beforeRequest?: (request: KeysetRequest, n: number) => void;
  } = {},
) {
  const requests: KeysetRequest[] = [];
  const fetch = async (request: KeysetRequest) => {
    options.beforeRequest?.(request, requests.length);
    const ties = options.ties?.(requests.length) ?? 'asc';
    requests.push(request);
    const low = request.from === null ? -Infinity : Date.parse(request.from);
    const high = request.before === null ? Infinity : Date.parse(request.before);
    const order = new Map(rows.map((r, i) => [r, ties === 'asc' ? i : -i]));
    const matching = rows
      .filter((r) => r.t >= low && r.t < high)
      .sort((a, b) => a.t - b.t || order.get(a)! - order.get(b)!);
    return matching.slice((request.page - 1) * request.rows, request.page * request.rows);
  };
  return { requests, fetch };
}

const options = (fetch: KeysetScanOptions['fetch'], extra: Partial<KeysetScanOptions> = {}): KeysetScanOptions => ({
  fetch,
  rows: 10,
  cursorOf: (r) => (r as Row).t,
  keyOf: (r) => (r as Row).code,
  start: { from: null, group: null },
  ...extra,
});

async function read(scan: KeysetScanOptions, onPage?: (progress: KeysetProgress) => void) {
  const seen = new Set<string>();
  const progresses: KeysetProgress[] = [];
  for await (const page of keysetScan(scan)) {
    for (const r of page.records) seen.add((r as Row).code);
    progresses.push(page.progress);
    onPage?.(page.progress);
  }
  return { seen, progresses };
}

const group = (second: number, size: number, prefix = 'g') =>
  Array.from({ length: size }, (_, i) => ({ code: `${prefix}${i}`, t: at(second, 250) }));
const missing = (rows: Row[], seen: Set<string>) => rows.map((r) => r.code).filter((c) => !seen.has(c));

describe('keysetScan', () => {
  it('reads everything, moving by value, and ends on a short page', async () => {
    const rows = Array.from({ length: 23 }, (_, i) => ({ code: `c${i}`, t: at(i) }));
    const s = server(rows);
    const { seen } = await read(options(s.fetch));
    expect(seen.size).toBe(23);
    expect(s.requests[1]).toEqual({ from: iso(9), before: null, page: 1, rows: 10 });
  });

  it('misses nothing when rows vanish between pages', async () => {
    const rows = Array.from({ length: 40 }, (_, i) => ({ code: `c${i}`, t: at(i) }));
    let n = 0;
    const s = server(rows);
    const { seen } = await read(options(s.fetch), () => void rows.splice(n++, 3)); // offset paging would now skip three unread rows
    expect(missing(rows, seen)).toEqual([]);
  });

  it('reads a group spanning three pages by page number, bounded to its second, then moves past it', async () => {
    const rows = [{ code: 'before', t: at(1) }, ...group(5, 25), { code: 'later', t: at(9) }];
    const s = server(rows);
    const { seen, progresses } = await read(options(s.fetch));
    expect(missing(rows, seen)).toEqual([]);
    const inGroup = s.requests.filter((r) => r.before === iso(6));
    expect(inGroup.every((r) => r.from === iso(5))).toBe(true);
    // Pass 1: pages 2 and 3 (page 1 was the value page); pass 2 reads pages 1 to 3 and adds nothing.
    expect(inGroup.map((r) => r.page)).toEqual([2, 3, 1, 2, 3]);
    expect(s.requests.at(-1)).toMatchObject({ from: iso(6), before: null, page: 1 });
    expect(progresses.at(-2)).toEqual({ from: iso(6), group: null });
  });

  it('settles a group of exactly one page with one more pass', async () => {
    const rows = [...group(5, 10), { code: 'later', t: at(7) }];
    const s = server(rows);
    const { seen } = await read(options(s.fetch));
    expect(missing(rows, seen)).toEqual([]);
    expect(s.requests.filter((r) => r.before === iso(6)).map((r) => r.page)).toEqual([2, 1, 2]);
  });

  it('finds the rows a deletion shifted onto a page already read', async () => {
    const rows = [...group(5, 30), { code: 'later', t: at(8) }];
    const s = server(rows, {
      // Before the group's page 2: five rows of page 1 vanish, and five unread rows move onto page 1.
      beforeRequest: (request) =>
        void (request.before !== null && request.page === 2 && rows[0]!.code === 'g0' && rows.splice(0, 5)),
    });
    const { seen } = await read(options(s.fetch));
    expect(rows[0]!.code).toBe('g5');
    expect(missing(rows, seen)).toEqual([]);
  });

  it('finds every row when equal values come in a different order on every request', async () => {
    const rows = [...group(5, 25), { code: 'later', t: at(8) }];
    const s = server(rows, { ties: (n) => (n % 2 === 0 ? 'asc' : 'desc') });
    const { seen } = await read(options(s.fetch));
    expect(missing(rows, seen)).toEqual([]);
  });

  it('resumes from saved progress in the middle of a group, without taking a half-read pass for a whole one', async () => {
    const rows = [...group(5, 25), { code: 'later', t: at(8) }];
    const first = server(rows);
    const saved: KeysetProgress[] = [];
    const partial = new Set<string>();
    for await (const page of keysetScan(options(first.fetch))) {
      for (const r of page.records) partial.add((r as Row).code);
      saved.push(page.progress);
      if (page.progress.group?.page === 3) break; // the run stops here, after committing the group's page 2
    }
    // Stored as JSON in sync_state.progress, and read back by another run.
    const progress = keysetStart(JSON.parse(JSON.stringify(saved.at(-1))) as KeysetProgress, null);
    expect(progress).toMatchObject({ from: iso(5), group: { pass: 1, page: 3, added: 20 } });
    expect(progress.group!.seen).toHaveLength(20);
    rows.splice(0, 5); // vanish while no run is reading: page 3 of the resumed run starts five rows later
    const second = server(rows);
    const { seen } = await read(options(second.fetch, { start: progress }));
    expect(second.requests[0]).toEqual({ from: iso(5), before: iso(6), page: 3, rows: 10 });
    expect(missing(rows, new Set([...partial, ...seen]))).toEqual([]);
  });

  it('gives up on a second that keeps changing after the allowed passes, reports it and reads on', async () => {
    const rows = [...group(5, 15), { code: 'later', t: at(8) }];
    let n = 0;
    // Every request inside the group finds one more voucher of that second.
    const s = server(rows, {
      beforeRequest: (request) => void (request.before !== null && rows.push({ code: `new${n++}`, t: at(5, 500) })),
    });
    const unsettled: [string, number][] = [];
    const { seen } = await read(
      options(s.fetch, { maxPasses: 3, onUnsettled: (second, passes) => unsettled.push([second, passes]) }),
    );
    expect(unsettled).toEqual([[iso(5), 3]]);
    expect(seen.has('later')).toBe(true);
    expect(s.requests.filter((r) => r.before !== null && r.page === 1)).toHaveLength(2); // passes 2 and 3
  });

  it('with confirmEnd, reads on past a page the server cut short', async () => {
    const rows = Array.from({ length: 40 }, (_, i) => ({ code: `c${i}`, t: at(i) }));
    const s = server(rows);
    let n = 0;
    const cutSecondPage: KeysetScanOptions['fetch'] = async (request) => {
      const page = await s.fetch(request);
      return n++ === 1 ? page.slice(0, 4) : page;
    };
    expect(missing(rows, (await read(options(cutSecondPage))).seen)).toHaveLength(40 - 13);
    n = 0;
    s.requests.length = 0;
    expect(missing(rows, (await read(options(cutSecondPage, { confirmEnd: true }))).seen)).toEqual([]);
    // The page from c9 was cut after c12, short but moved on; the page from c39 holds only c39 and ends it.
    expect(s.requests.map((r) => r.from)).toEqual([null, iso(9), iso(12), iso(21), iso(30), iso(39)]);
  });

  it('never asks past the end of its window', async () => {
    const rows = [
      ...Array.from({ length: 30 }, (_, i) => ({ code: `c${i}`, t: at(i) })),
      ...group(30, 12),
      { code: 'next', t: at(31) },
    ];
    const s = server(rows);
    const { seen } = await read(options(s.fetch, { start: { from: iso(10), group: null }, before: iso(31) }));
    expect(s.requests.every((r) => r.before !== null && Date.parse(r.before) <= at(31))).toBe(true);
    expect([...seen].sort()).toEqual(
      rows
        .filter((r) => r.t >= at(10) && r.t < at(31))
        .map((r) => r.code)
        .sort(),
    );
  });
});

describe('keysetStart', () => {
  it('starts a new scan, or resumes saved progress', () => {
    expect(keysetStart(null, iso(3))).toEqual({ from: iso(3), group: null });
    const saved = { from: iso(3), group: { pass: 2, page: 4, seen: ['a'], added: 0 } };
    expect(keysetStart(saved, null)).toEqual(saved);
  });

  it('refuses progress it cannot read, saying what it got', () => {
    expect(() => keysetStart([1, 2], null)).toThrow(/cannot resume a keyset scan from progress \[1,2\]/);
    expect(() => keysetStart({ from: 5 }, null)).toThrow(/cannot resume/);
  });
});

describe('planWindows', () => {
  /** The cursor of the n-th row in ascending order, as a rows=1 request for page n answers it. */
  const prober = (rows: Row[]) => {
    const asked: number[] = [];
    const sorted = [...rows].sort((a, b) => a.t - b.t);
    return { asked, probe: async (n: number) => (asked.push(n), sorted[n - 1]?.t) };
  };

  it('does not split two windows worth or less, at the cost of one request', async () => {
    const p = prober(Array.from({ length: 20 }, (_, i) => ({ code: `c${i}`, t: at(i) })));
    expect(await planWindows(p.probe, 10)).toBeNull();
    expect(p.asked).toEqual([21]);
  });

  it('splits into windows of about `size` rows on whole seconds, open at both ends, that a second never straddles', async () => {
    const rows = [
      ...Array.from({ length: 12 }, (_, i) => ({ code: `a${i}`, t: at(i, 400) })),
      ...group(20, 25),
      ...Array.from({ length: 8 }, (_, i) => ({ code: `z${i}`, t: at(30 + i) })),
    ];
    const p = prober(rows);
    const windows = (await planWindows(p.probe, 10))!;
    // Rows 11, 21, 31 and 41: rows 21 and 31 both fall in second 20, which starts one window only.
    expect(windows).toEqual([
      { from: null, before: iso(10) },
      { from: iso(10), before: iso(20) },
      { from: iso(20), before: iso(33) },
      { from: iso(33), before: null },
    ]);
    // Scanned one by one, the windows read every row, the group once per pass, and nothing twice across windows.
    const byWindow = await Promise.all(
      windows.map(
        async (w) =>
          (await read(options(server(rows).fetch, { start: { from: w.from, group: null }, before: w.before }))).seen,
      ),
    );
    expect(byWindow.flatMap((seen) => [...seen]).sort()).toEqual(rows.map((r) => r.code).sort());
  });

  it('skips a row whose cursor cannot be read, and plans nothing when none can', async () => {
    const probe = async (n: number) => (n <= 40 ? (n === 11 ? null : at(n)) : undefined);
    expect(await planWindows(probe, 10)).toEqual([
      { from: null, before: iso(21) },
      { from: iso(21), before: iso(31) },
      { from: iso(31), before: null },
    ]);
    expect(await planWindows(async (n) => (n <= 40 ? null : undefined), 10)).toBeNull();
  });
});
