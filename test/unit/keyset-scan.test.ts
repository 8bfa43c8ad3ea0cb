import { describe, expect, it } from 'vitest';
import {
  GROUP_OVERLAP,
  keysetScan,
  keysetStart,
  overlappingPage,
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

  it('reads a group of small pages by page number from its second on, then again, and moves past it', async () => {
    const rows = [{ code: 'before', t: at(1) }, ...group(5, 25), { code: 'later', t: at(9) }];
    const s = server(rows);
    const { seen, progresses } = await read(options(s.fetch));
    expect(missing(rows, seen)).toEqual([]);
    // Pages of 10 are too small to overlap by GROUP_OVERLAP: the group is read whole, then again.
    const inGroup = s.requests.filter((r) => r.from === iso(5));
    expect(inGroup.every((r) => r.before === null && r.rows === 10)).toBe(true);
    // Pass 1: page 1 by value, then pages 2 and 3 (which reads on to `later`); pass 2 reads pages 1 to 3 and adds nothing.
    expect(inGroup.map((r) => r.page)).toEqual([1, 2, 3, 1, 2, 3]);
    expect(s.requests).toHaveLength(7);
    expect(progresses.at(-1)).toEqual({ from: iso(9), group: null });
  });

  it('settles a group of exactly one page with one more pass', async () => {
    const rows = [...group(5, 10), { code: 'later', t: at(7) }];
    const s = server(rows);
    const { seen } = await read(options(s.fetch));
    expect(missing(rows, seen)).toEqual([]);
    expect(s.requests.filter((r) => r.from === iso(5)).map((r) => r.page)).toEqual([1, 2, 1, 2]);
  });

  it('finds the rows a deletion shifted onto a page already read', async () => {
    const rows = [...group(5, 30), { code: 'later', t: at(8) }];
    const s = server(rows, {
      // Before the group's page 2: five rows of page 1 vanish, and five unread rows move onto page 1.
      beforeRequest: (request) =>
        void (request.from === iso(5) && request.page === 2 && rows[0]!.code === 'g0' && rows.splice(0, 5)),
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
      if (page.progress.group?.read === 20) break; // the run stops here, after committing the group's page 2
    }
    // Stored as JSON in sync_state.progress, and read back by another run.
    const progress = keysetStart(JSON.parse(JSON.stringify(saved.at(-1))) as KeysetProgress, null);
    expect(progress).toMatchObject({ from: iso(5), group: { pass: 1, read: 20, added: 20 } });
    expect(progress.group!.seen).toHaveLength(20);
    rows.splice(0, 5); // vanish while no run is reading: page 3 of the resumed run starts five rows later
    const second = server(rows);
    const { seen } = await read(options(second.fetch, { start: progress }));
    expect(second.requests[0]).toEqual({ from: iso(5), before: null, page: 3, rows: 10 });
    expect(missing(rows, new Set([...partial, ...seen]))).toEqual([]);
  });

  it('gives up on a second that keeps changing after the allowed passes, reports it and reads on', async () => {
    const rows = [...group(5, 15), { code: 'later', t: at(8) }];
    let n = 0;
    // Every request inside the group finds one more voucher of that second.
    const s = server(rows, {
      beforeRequest: (request) => void (request.from === iso(5) && rows.push({ code: `new${n++}`, t: at(5, 500) })),
    });
    const unsettled: [string, number][] = [];
    const { seen } = await read(
      options(s.fetch, { maxPasses: 3, onUnsettled: (second, passes) => unsettled.push([second, passes]) }),
    );
    expect(unsettled).toEqual([[iso(5), 3]]);
    expect(seen.has('later')).toBe(true);
    expect(s.requests.filter((r) => r.from === iso(5) && r.page === 1)).toHaveLength(3); // passes 1 (by value), 2 and 3
  });

  it('resumes a group saved by the previous version (page numbers, no anchors), missing nothing', async () => {
    const rows = [...group(5, 25), { code: 'later', t: at(8) }];
    // What the previous version saved after the group's page 2 (pages of 10, 20 keys read).
    const old = {
      from: iso(5),
      group: { pass: 1, page: 3, seen: rows.slice(0, 20).map((r) => r.code), added: 20, rows: 10 },
    };
    rows.splice(0, 5);
    const s = server(rows);
    const { seen } = await read(options(s.fetch, { start: keysetStart(old, null) }));
    expect(s.requests[0]).toEqual({ from: iso(5), before: null, page: 3, rows: 10 });
    // With no anchors to start on, that pass vouches for nothing: the group is read again.
    expect(missing(rows, seen)).toEqual([]);
  });

  it('refuses a saved group it cannot read', () => {
    expect(() => keysetStart({ from: iso(5), group: 7 }, null)).toThrow(/cannot resume/);
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

/**
 * A bulk import of 130 vouchers in second 30 between 20 earlier and 40 later ones, read in pages of 50: large
 * enough for each group page to start GROUP_OVERLAP records before the last one ended.
 */
describe('keysetScan inside a group, by overlapping pages', () => {
  const bulk = () => [
    ...Array.from({ length: 20 }, (_, i) => ({ code: `a${i}`, t: at(i) })),
    ...group(30, 130),
    ...Array.from({ length: 40 }, (_, i) => ({ code: `z${i}`, t: at(40 + i) })),
  ];
  const wide = (fetch: KeysetScanOptions['fetch'], extra: Partial<KeysetScanOptions> = {}) =>
    options(fetch, { rows: 50, ...extra });
  const inGroup = (requests: KeysetRequest[]) => requests.filter((r) => r.from === iso(30));
  const passes = (requests: KeysetRequest[]) => inGroup(requests).filter((r) => r.page === 1).length;

  it('reads a quiet group once, each page starting on the last one, and reads on past it in the same pass', async () => {
    const rows = bulk();
    const s = server(rows);
    const { seen } = await read(wide(s.fetch));
    expect(missing(rows, seen)).toEqual([]);
    // The page by value that found the group, then pages of 47 and 45 starting 3 and 4 records back; the last
    // reads on past the second, and the next page by value starts from the last second it read.
    expect(inGroup(s.requests)).toEqual([
      { from: iso(30), before: null, page: 1, rows: 50 },
      { from: iso(30), before: null, page: 2, rows: 47 },
      { from: iso(30), before: null, page: 3, rows: 45 },
    ]);
    expect(s.requests).toHaveLength(5); // 190 records: the minimum is 4 pages
    expect(s.requests.at(-1)).toEqual({ from: iso(44), before: null, page: 1, rows: 50 });
  });

  it('costs no request more when fewer rows than the overlap vanish before a page', async () => {
    const rows = bulk();
    const s = server(rows, {
      // Before each group page after the first: two vouchers of the group already read vanish.
      beforeRequest: (request) => {
        if (request.from !== iso(30) || request.page === 1) return;
        const [first] = rows.splice(
          rows.findIndex((r) => r.code === 'g10'),
          1,
        );
        rows.splice(rows.indexOf(rows.find((r) => r.t === at(30, 250) && r !== first)!), 1);
      },
    });
    const { seen } = await read(wide(s.fetch));
    expect(missing(rows, seen)).toEqual([]);
    expect(passes(s.requests)).toBe(1);
    expect(s.requests).toHaveLength(5);
  });

  it('steps back when more rows than the overlap vanish before a page: two requests more, no second pass', async () => {
    const rows = bulk();
    let removed = false;
    const s = server(rows, {
      beforeRequest: (request) => {
        // Five vouchers of the group's first page vanish: five unread ones shift onto it, out of the overlap.
        if (request.from !== iso(30) || request.page !== 2 || removed) return;
        rows.splice(20, 5);
        removed = true;
      },
    });
    const { seen } = await read(wide(s.fetch));
    expect(removed).toBe(true);
    expect(missing(rows, seen)).toEqual([]);
    expect(passes(s.requests)).toBe(1);
    // The page from record 48 finds none of g47–g49: the next starts 12 records back, at record 39, and does.
    expect(inGroup(s.requests).slice(1, 3)).toEqual([
      { from: iso(30), before: null, page: 2, rows: 47 },
      { from: iso(30), before: null, page: 2, rows: 38 },
    ]);
    // Quiet, the scan makes 5 requests: here the page that found no anchor, and the shorter one stepping back.
    expect(s.requests).toHaveLength(7);
  });

  it('reads the group again when more rows vanish than stepping back can find, and misses none', async () => {
    const rows = bulk();
    let removed = false;
    const s = server(rows, {
      beforeRequest: (request) => {
        if (request.from !== iso(30) || request.page !== 2 || removed) return;
        rows.splice(20, 40); // 40 vouchers already read vanish: the anchors are now 40 records earlier
        removed = true;
      },
    });
    const { seen } = await read(wide(s.fetch));
    expect(missing(rows, seen)).toEqual([]);
    expect(passes(s.requests)).toBe(2);
  });

  it('does not take a group page the server cut short for the end of the group', async () => {
    for (const confirmEnd of [false, true]) {
      const rows = bulk();
      const s = server(rows);
      let cut = false;
      const cutOnce: KeysetScanOptions['fetch'] = async (request) => {
        const page = await s.fetch(request);
        if (cut || request.from !== iso(30) || request.page !== 2) return page;
        cut = true;
        return page.slice(0, 20);
      };
      const { seen } = await read(wide(cutOnce, { confirmEnd }));
      expect(cut).toBe(true);
      expect(missing(rows, seen)).toEqual([]);
      expect(passes(s.requests)).toBe(1); // the next page starts on the last records the cut page brought
    }
  });

  it('finds a voucher added to the group before the place a page starts, in another pass', async () => {
    const rows = bulk();
    const added = { code: 'back-dated', t: at(30, 250) };
    const s = server(rows, {
      beforeRequest: (request) => {
        if (request.from === iso(30) && request.page === 2 && !rows.includes(added)) rows.splice(25, 0, added);
      },
    });
    const { seen } = await read(wide(s.fetch));
    expect(seen.has('back-dated')).toBe(true);
    expect(missing(rows, seen)).toEqual([]);
    expect(passes(s.requests)).toBe(2);
  });

  it('finds every row when equal values come in another order on every request', async () => {
    const rows = bulk();
    const s = server(rows, { ties: (n) => (n % 2 === 0 ? 'asc' : 'desc') });
    const { seen } = await read(wide(s.fetch));
    expect(missing(rows, seen)).toEqual([]);
    expect(passes(s.requests)).toBeGreaterThan(1);
  });

  it('resumes in the middle of a group on its saved anchors', async () => {
    const rows = bulk();
    const first = server(rows);
    let saved: KeysetProgress | undefined;
    const partial = new Set<string>();
    for await (const page of keysetScan(wide(first.fetch))) {
      for (const r of page.records) partial.add((r as Row).code);
      saved = page.progress;
      if (page.progress.group?.read === 94) break; // stopped after the group's second page
    }
    const progress = keysetStart(JSON.parse(JSON.stringify(saved)) as KeysetProgress, null);
    expect(progress.group).toMatchObject({ pass: 1, read: 94, anchors: ['g91', 'g92', 'g93'], doubt: false });
    rows.splice(20, 1); // g0 vanishes while no run reads: within the overlap
    const second = server(rows);
    const { seen } = await read(wide(second.fetch, { start: progress }));
    expect(missing(rows, new Set([...partial, ...seen]))).toEqual([]);
    expect(passes(second.requests)).toBe(0);
  });
});

describe('overlappingPage', () => {
  it('asks for the page that starts at least the overlap before where the pass stands and reaches furthest', () => {
    expect(overlappingPage(250, 3, 250)).toEqual({ page: 2, rows: 247 });
    for (let read = 250; read < 20_000; read += 97) {
      const { page, rows } = overlappingPage(read, GROUP_OVERLAP, 250)!;
      expect(rows).toBeLessThanOrEqual(250);
      expect((page - 1) * rows).toBeLessThanOrEqual(read - GROUP_OVERLAP);
      expect(page * rows - read).toBeGreaterThanOrEqual(125);
    }
  });

  it('gives up on pages too small to gain half a page past the overlap', () => {
    expect(overlappingPage(10, 3, 10)).toBeNull();
    expect(overlappingPage(2, 3, 250)).toBeNull();
  });
});

describe('keysetStart', () => {
  it('starts a new scan, or resumes saved progress', () => {
    expect(keysetStart(null, iso(3))).toEqual({ from: iso(3), group: null });
    const saved = { from: iso(3), group: { pass: 2, read: 40, anchors: ['a'], seen: ['a'], added: 0, doubt: false } };
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
