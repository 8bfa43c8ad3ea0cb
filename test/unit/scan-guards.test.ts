/**
 * The scans against servers that misbehave, unit by unit: a lying total, an ignored paging parameter or
 * filter, answers too large to hold (a fetch that throws ResponseTooLargeError), and the guard's own parts.
 */
import { describe, expect, it } from 'vitest';
import { FatalSourceError, ResponseTooLargeError } from '../../src/errors.ts';
import { keysetScan, type KeysetRequest } from '../../src/sync/keyset-scan.ts';
import { offsetScan } from '../../src/sync/offset-scan.ts';
import { convertPage, pageScan } from '../../src/sync/page-scan.ts';
import { KeyHashSet, ProgressGuard } from '../../src/sync/progress-guard.ts';
import { totalWarning } from '../../src/sync/total-check.ts';

type Row = { id: string; t: number };
const rows = (n: number, second = (i: number) => i): Row[] =>
  Array.from({ length: n }, (_, i) => ({ id: `v${i}`, t: Date.UTC(2024, 0, 1) + second(i) * 1000 }));
const id = (r: unknown) => (r as Row).id;
const t = (r: unknown) => (r as Row).t;
const tooLarge = () => new ResponseTooLargeError('answer larger than 64 kB', 65_536);

async function drain<T extends { records: unknown[] }>(pages: AsyncIterable<T>) {
  const seen = new Set<string>();
  const progress: T[] = [];
  for await (const page of pages) {
    for (const r of page.records) seen.add(id(r));
    progress.push(page);
  }
  return { seen, progress };
}

describe('offsetScan against a hostile server', () => {
  const offsetOptions = (list: Row[], extra: Partial<Parameters<typeof offsetScan>[0]> = {}) => {
    const requests: { offset: number; count: number }[] = [];
    const options: Parameters<typeof offsetScan>[0] = {
      fetch: async (offset, count) => (
        requests.push({ offset, count }),
        { records: list.slice(offset, offset + count), total: 50 }
      ),
      pageSize: 100,
      overlap: 5,
      direction: 'ASC',
      keyOf: id,
      cursorOf: t,
      requireEmptyPage: true,
      server: 'CareCloud',
      ...extra,
    };
    return { requests, options };
  };

  it('reads on past a total that lies low while pages come back full', async () => {
    const { options } = offsetOptions(rows(300));
    const { seen, progress } = await drain(offsetScan(options));
    expect(seen.size).toBe(300);
    expect(progress.at(-1)!.total).toBe(50);
  });

  it('stops, naming offset, when every page repeats what was read', async () => {
    const list = rows(100);
    const requests: number[] = [];
    const pages = offsetScan({
      fetch: async (offset) => (requests.push(offset), { records: list.slice(0, 20), total: null }),
      pageSize: 20,
      overlap: 5,
      direction: 'ASC',
      keyOf: id,
      cursorOf: t,
      requireEmptyPage: true,
      server: 'CareCloud',
    });
    await expect(drain(pages)).rejects.toThrow(
      /CareCloud returned only records this scan had already read for 5 pages in a row \(offset 19, offset 34, .*ignore `offset`/,
    );
    expect(requests).toHaveLength(6);
  });

  it('halves the page on an answer too large, keeps the size in the progress, and misses nothing', async () => {
    const list = rows(300);
    const { requests, options } = offsetOptions(list);
    options.fetch = async (offset, count) => {
      requests.push({ offset, count });
      if (count > 30) throw tooLarge();
      return { records: list.slice(offset, offset + count), total: 300 };
    };
    const { seen, progress } = await drain(offsetScan(options));
    expect(seen.size).toBe(300);
    expect(requests.slice(0, 3).map((r) => r.count)).toEqual([100, 50, 25]);
    expect(progress[0]!.progress.size).toBe(25);
    // Resumed from that progress, the scan goes on with pages of 25.
    const resumed = offsetOptions(list, { start: progress[3]!.progress });
    await drain(offsetScan(resumed.options));
    expect(resumed.requests.every((r) => r.count === 25)).toBe(true);
  });

  it('gives up, naming where, when one record alone is too large', async () => {
    const { options } = offsetOptions(rows(10));
    options.fetch = async () => {
      throw tooLarge();
    };
    await expect(drain(offsetScan(options))).rejects.toThrow(
      /CareCloud at offset 0: the answer for a single record is larger than HTTP_MAX_RESPONSE_SIZE \(65536 bytes\)/,
    );
  });
});

describe('keysetScan against a hostile server', () => {
  /** Records in [from, before), ascending, by page; `ignore` drops the range or the page number. */
  function server(list: Row[], ignore: { where?: boolean; page?: boolean; maxRows?: number } = {}) {
    const requests: KeysetRequest[] = [];
    const fetch = async (request: KeysetRequest) => {
      requests.push(request);
      if (ignore.maxRows !== undefined && request.rows > ignore.maxRows) throw tooLarge();
      const low = ignore.where || request.from === null ? -Infinity : Date.parse(request.from);
      const high = ignore.where || request.before === null ? Infinity : Date.parse(request.before);
      const page = ignore.page ? 1 : request.page;
      return list.filter((r) => r.t >= low && r.t < high).slice((page - 1) * request.rows, page * request.rows);
    };
    return { requests, fetch };
  }
  const keysetOptions = (fetch: (request: KeysetRequest) => Promise<unknown[]>, from: string | null = null) => ({
    fetch,
    rows: 10,
    cursorOf: t,
    keyOf: id,
    start: { from, group: null },
    server: 'Cin7',
  });

  it('stops at the first record outside the range asked for, naming where', async () => {
    const s = server(rows(300), { where: true });
    await expect(drain(keysetScan(keysetOptions(s.fetch, '2024-01-01T15:00:00Z')))).rejects.toThrow(
      /Cin7 answered a request for records >= 2024-01-01T15:00:00Z with one at 2024-01-01T00:00:00.000Z: it seems to ignore `where`/,
    );
    expect(s.requests).toHaveLength(1);
  });

  it('bounds a pass over a second when the server ignores page', async () => {
    const s = server(
      rows(50, () => 7),
      { page: true },
    );
    await expect(drain(keysetScan(keysetOptions(s.fetch)))).rejects.toThrow(/ignore `page`/);
    expect(s.requests.length).toBeLessThanOrEqual(5);
  });

  it('halves the rows on an answer too large, keeping its place in a group, and reads every record', async () => {
    // 60 records in one second, then 40 more: a group read by position.
    const list = rows(100, (i) => (i < 60 ? 5 : 10 + i));
    const s = server(list, { maxRows: 5 });
    let calls = 0;
    const pages = keysetScan({
      ...keysetOptions(async (request) => {
        // The group's first page succeeds at 10 rows; the size then drops inside the group.
        calls++;
        return calls <= 2 && request.rows === 10 ? server(list).fetch(request) : s.fetch(request);
      }),
    });
    const { seen, progress } = await drain(pages);
    expect(seen.size).toBe(100);
    expect(progress.at(-1)!.progress.rows).toBe(5);
    // Records 1 to 10 were read at 10 a page: the group goes on from record 11 (page 3 of 5), not from page 1.
    const groupPages = s.requests.filter((r) => r.from === '2024-01-01T00:00:05Z' && r.rows === 5).map((r) => r.page);
    expect(groupPages[0]).toBe(3);
  });
});

describe('pageScan against a hostile server', () => {
  it('stops, naming page, when the server ignores it', async () => {
    const list = rows(100);
    let requests = 0;
    const pages = pageScan({
      fetch: async () => (requests++, list.slice(0, 10)),
      rows: 10,
      start: { page: 1 },
      keyOf: id,
      server: 'Cin7',
    });
    await expect(drain(pages)).rejects.toThrow(
      /Cin7 returned only records this scan had already read for 5 pages in a row \(page 2, .*ignore `page`/,
    );
    expect(requests).toBe(6);
  });

  it('converts the page number when the rows drop, skipping nothing', async () => {
    const list = rows(95);
    const asked: [number, number][] = [];
    let failures = 0;
    const fetch = async (page: number, size: number) => {
      asked.push([page, size]);
      if (page === 3 && size === 10 && failures++ === 0) throw tooLarge();
      return list.slice((page - 1) * size, page * size);
    };
    const { seen, progress } = await drain(pageScan({ fetch, rows: 10, start: { page: 1 }, keyOf: id }));
    expect(seen.size).toBe(95);
    expect(asked.slice(2, 4)).toEqual([
      [3, 10],
      [5, 5],
    ]);
    expect(progress.at(-1)!.progress.rows).toBe(5);
    expect(convertPage(4, 25, 10)).toBe(8);
  });
});

describe('the progress guard', () => {
  it('bounds the requests of a scan that brings one new record a page', () => {
    const guard = new ProgressGuard({ server: 'X', parameter: 'offset', step: 100 });
    let n = 0;
    expect(() => {
      for (;;) {
        guard.request(`offset ${n}`);
        guard.page([`k${n++}`], `offset ${n}`);
      }
    }).toThrow(FatalSourceError);
    expect(n).toBeLessThan(30);
  });

  it('remembers a million keys in a few megabytes, without false repeats among them', () => {
    const set = new KeyHashSet();
    let repeats = 0;
    for (let i = 0; i < 1_000_000; i++) if (!set.add(`voucher-${i}`)) repeats++;
    expect(set.size + repeats).toBe(1_000_000);
    expect(repeats).toBeLessThan(500);
    expect(set.has('voucher-5')).toBe(true);
  });

  it('warns when a full scan and the reported total disagree beyond churn', () => {
    expect(totalWarning({ source: 'carecloud', read: 300, rejected: 0, reported: 50 })).toMatch(
      /read 300 distinct records .* total of 50/,
    );
    expect(totalWarning({ source: 'carecloud', read: 300, rejected: 0, reported: 305 })).toBeNull();
    expect(totalWarning({ source: 'carecloud', read: 300, rejected: 40, reported: 340 })).toBeNull();
    expect(totalWarning({ source: 'carecloud', read: 300, rejected: 0, reported: null })).toBeNull();
  });
});
