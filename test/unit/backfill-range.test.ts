import { describe, expect, it } from 'vitest';
import { firstOffsetAtOrAfter } from '../../src/sync/backfill-locate.ts';
import { backfillJobId, parseRange, rangeOfData, utcText } from '../../src/sync/backfill-range.ts';

const NOW = new Date('2026-12-02T12:00:00Z');
const range = (from: string, to: string, zone?: string) => {
  const r = parseRange({ from, to, zone }, NOW);
  return [utcText(r.from), utcText(r.to)];
};

describe('the range of a backfill, as typed', () => {
  it('reads ISO 8601 and YYYY-MM-DD, in UTC unless a zone is given; an offset in the text wins', () => {
    expect(range('2026-11-01', '2026-11-02')).toEqual(['2026-11-01T00:00:00Z', '2026-11-02T00:00:00Z']);
    expect(range('2026-11-01', '2026-11-02', 'Europe/Prague')).toEqual([
      '2026-10-31T23:00:00Z',
      '2026-11-01T23:00:00Z',
    ]);
    expect(range('2026-07-01T08:00', '2026-07-01T09:30:00+00:00', 'Europe/Prague')).toEqual([
      '2026-07-01T06:00:00Z',
      '2026-07-01T09:30:00Z',
    ]);
    // Whole seconds, never narrower than asked.
    expect(range('2026-11-01T00:00:00.900Z', '2026-11-01T00:00:01.100Z')).toEqual([
      '2026-11-01T00:00:00Z',
      '2026-11-01T00:00:02Z',
    ]);
    // A range that ends in the future reads to the newest record.
    expect(range('2026-12-01', '2027-01-01')).toEqual(['2026-12-01T00:00:00Z', '2027-01-01T00:00:00Z']);
  });

  it.each([
    [
      { from: '2026-11-02', to: '2026-11-01' },
      '--from (2026-11-02T00:00:00Z) must be before --to (2026-11-01T00:00:00Z)',
    ],
    [{ from: '2026-11-01', to: '2026-11-01' }, 'the range is empty'],
    [{ from: 'last week', to: '2026-11-01' }, '--from: "last week" is not a date'],
    [{ from: '2026-11-01', to: '2026-02-30' }, '--to: "2026-02-30" is not a date'],
    [{ from: '01/11/2026', to: '2026-11-02' }, 'expected ISO 8601 or YYYY-MM-DD'],
    [{ from: '2026-12-03', to: '2026-12-04' }, 'the range starts in the future'],
    [
      { from: '2026-11-01', to: '2026-11-02', zone: 'Europe/Nowhere' },
      '--zone: "Europe/Nowhere" is not an IANA time zone',
    ],
    [{ from: '2026-03-29T02:30', to: '2026-04-01', zone: 'Europe/Prague' }, 'does not exist in Europe/Prague'],
  ])('refuses %j, naming what is wrong', (input, message) => {
    expect(() => parseRange(input, NOW)).toThrow(message);
  });

  it('travels on the queue as UTC seconds and is checked when it comes back', () => {
    const parsed = parseRange({ from: '2026-11-01', to: '2026-11-08' }, NOW);
    expect(rangeOfData({ from: '2026-11-01T00:00:00Z', to: '2026-11-08T00:00:00Z' })).toEqual(parsed);
    expect(() => rangeOfData({ from: '2026-11-08T00:00:00Z', to: '2026-11-01T00:00:00Z' })).toThrow('from before to');
    expect(() => rangeOfData(undefined)).toThrow('a backfill job needs a range');
    expect(backfillJobId(parsed)).toBe('cli-backfill-20261101T000000Z-20261108T000000Z');
  });
});

describe('where a range lies in a list sorted by cursor', () => {
  const cursors = [null, null, 10, 20, 20, 20, 30, 40, 50];
  const probe = async (offset: number) => (offset < cursors.length ? cursors[offset]! : undefined);

  it('finds the first offset at or after a cursor, unreadable records sorting first', async () => {
    expect(await firstOffsetAtOrAfter(probe, 20, 0, cursors.length)).toBe(3);
    expect(await firstOffsetAtOrAfter(probe, 21, 0, cursors.length)).toBe(6);
    expect(await firstOffsetAtOrAfter(probe, 0, 0, cursors.length)).toBe(2);
    expect(await firstOffsetAtOrAfter(probe, 99, 0, cursors.length)).toBe(9);
    // A list that shrank since it was counted: past its end counts as after.
    expect(await firstOffsetAtOrAfter(probe, 99, 0, 20)).toBe(9);
  });

  it('costs about log2 of the list, one record a request', async () => {
    let requests = 0;
    const big = async (offset: number) => (requests++, offset < 1_000_000 ? offset : undefined);
    expect(await firstOffsetAtOrAfter(big, 654_321, 0, 1_000_000)).toBe(654_321);
    expect(requests).toBeLessThanOrEqual(20);
  });
});
