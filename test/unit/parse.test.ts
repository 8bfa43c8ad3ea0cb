import { DateTime } from 'luxon';
import { describe, expect, it } from 'vitest';
import { parseAmount, parseIsoDateTime, parseLocalDateTime } from '../../src/sources/parse.ts';

describe('parseLocalDateTime', () => {
  const zone = 'Europe/Prague';

  it('reads both the space and the T form as local time in the zone', () => {
    expect(parseLocalDateTime('2024-07-01 12:00:00', zone)).toBe('2024-07-01T10:00:00.000Z');
    expect(parseLocalDateTime('2024-07-01T12:00:00', zone)).toBe('2024-07-01T10:00:00.000Z');
    expect(parseLocalDateTime('2024-01-15 12:00:00', zone)).toBe('2024-01-15T11:00:00.000Z');
  });

  it('takes the earlier instant for the repeated autumn hour', () => {
    // 02:30 happens twice on 2024-10-27 in Prague: first at +02:00 (00:30Z), then at +01:00 (01:30Z).
    expect(parseLocalDateTime('2024-10-27 02:30:00', zone)).toBe('2024-10-27T00:30:00.000Z');
    // Just outside the repeated hour there is only one reading.
    expect(parseLocalDateTime('2024-10-27 03:00:00', zone)).toBe('2024-10-27T02:00:00.000Z');
    expect(parseLocalDateTime('2024-10-27 01:59:59', zone)).toBe('2024-10-26T23:59:59.000Z');
  });

  it('refuses a time inside the skipped spring hour', () => {
    expect(() => parseLocalDateTime('2024-03-31 02:30:00', zone)).toThrow(/does not exist in Europe\/Prague/);
    expect(parseLocalDateTime('2024-03-31 03:00:00', zone)).toBe('2024-03-31T01:00:00.000Z');
    expect(parseLocalDateTime('2024-03-31 01:59:59', zone)).toBe('2024-03-31T00:59:59.000Z');
  });

  it('refuses impossible and malformed dates with the value in the message', () => {
    expect(() => parseLocalDateTime('0000-00-00 00:00:00', zone)).toThrow(/"0000-00-00 00:00:00" is not a real date/);
    expect(() => parseLocalDateTime('2024-02-30 10:00:00', zone)).toThrow(/not a real date/);
    expect(() => parseLocalDateTime('yesterday', zone)).toThrow(/not a date-time of the form/);
  });
});

describe('parseLocalDateTime agrees with the reference rule everywhere', () => {
  /** The rule stated plainly with Luxon: the earliest instant that shows this wall time, or none. */
  function reference(text: string, zone: string): string | null {
    const [date, time] = text.split(' ') as [string, string];
    const [year, month, day] = date.split('-').map(Number) as [number, number, number];
    const [hour, minute, second] = time.split(':').map(Number) as [number, number, number];
    const candidates = DateTime.fromObject({ year, month, day, hour, minute, second }, { zone })
      .getPossibleOffsets()
      .filter((dt) => dt.hour === hour && dt.minute === minute && dt.day === day);
    return candidates.length === 0 ? null : new Date(Math.min(...candidates.map((dt) => dt.toMillis()))).toISOString();
  }

  for (const zone of ['Europe/Prague', 'America/New_York', 'Australia/Lord_Howe', 'Pacific/Auckland', 'UTC']) {
    it(`in ${zone}, through a year, and every minute around its clock changes`, () => {
      const times: number[] = [];
      // A sample of the year (about 2,200 times, at an odd step so that every hour and minute comes up)...
      for (let t = Date.UTC(2024, 0, 1); t < Date.UTC(2025, 0, 1); t += 14_407_000) times.push(t);
      // ...and every 61 s of wall time from three hours before each change of the zone's offset to three hours
      // after, where wall times repeat or are skipped. The change is found to the minute by bisecting its day.
      const offsetAt = (ms: number) => DateTime.fromMillis(ms, { zone }).offset;
      for (let day = Date.UTC(2024, 0, 1); day < Date.UTC(2025, 0, 1); day += 86_400_000) {
        if (offsetAt(day) === offsetAt(day + 86_400_000)) continue;
        let [low, high] = [day, day + 86_400_000];
        while (high - low > 60_000) {
          const middle = low + Math.floor((high - low) / 2);
          if (offsetAt(middle) === offsetAt(low)) low = middle;
          else high = middle;
        }
        // The texts below are wall times: centre them on the change as the zone's clocks showed it.
        const wall = high + offsetAt(low) * 60_000;
        for (let t = wall - 3 * 3_600_000; t < wall + 3 * 3_600_000; t += 61_000) times.push(t);
      }
      let mismatches = 0;
      for (const t of times) {
        const text = new Date(t).toISOString().slice(0, 19).replace('T', ' ');
        const expected = reference(text, zone);
        let actual: string | null;
        try {
          actual = parseLocalDateTime(text, zone);
        } catch {
          actual = null;
        }
        if (actual !== expected) mismatches++;
      }
      expect(mismatches).toBe(0);
    });
  }
});

describe('parseIsoDateTime', () => {
  it('reads Cin7 seven-digit fractions with a New Zealand offset, truncating to milliseconds', () => {
    expect(parseIsoDateTime('2021-05-09T15:52:29.2618824+12:00', 'UTC')).toBe('2021-05-09T03:52:29.261Z');
    expect(parseIsoDateTime('2021-01-09T15:52:29.9999999+13:00', 'UTC')).toBe('2021-01-09T02:52:29.999Z');
  });

  it('reads a time without offset in the default zone', () => {
    expect(parseIsoDateTime('2021-05-09T15:52:29', 'UTC')).toBe('2021-05-09T15:52:29.000Z');
    expect(parseIsoDateTime('2021-05-09T15:52:29', 'Pacific/Auckland')).toBe('2021-05-09T03:52:29.000Z');
    expect(parseIsoDateTime('2021-05-09T15:52:29Z', 'Pacific/Auckland')).toBe('2021-05-09T15:52:29.000Z');
  });

  it('refuses impossible dates', () => {
    expect(() => parseIsoDateTime('0000-00-00T00:00:00', 'UTC')).toThrow(/not a real date/);
    expect(() => parseIsoDateTime('0000-00-00 00:00:00', 'UTC')).toThrow(/not an ISO 8601/);
  });
});

describe('parseAmount', () => {
  it('keeps numbers and unambiguous decimal strings exactly', () => {
    expect(parseAmount(3.49)).toBe('3.49');
    expect(parseAmount(0)).toBe('0');
    expect(parseAmount('12.50')).toBe('12.50');
    expect(parseAmount(null)).toBeNull();
  });

  it('gives a number as its shortest round-trip decimal, the digits JSON.stringify (and so raw) keeps', () => {
    for (const n of [100 / 3, 0.1 + 0.2, -12.345, 12345678901234.5, 1e21, 5e-7]) {
      expect(parseAmount(n)).toBe(JSON.stringify(n));
      expect(Number(parseAmount(n))).toBe(n);
    }
    expect(parseAmount(100 / 3)).toBe('33.333333333333336');
    expect(parseAmount(1e21)).toBe('1e+21');
  });

  it('refuses a decimal comma rather than guessing', () => {
    expect(() => parseAmount('12,50')).toThrow('expected a number, got the string "12,50"');
    expect(() => parseAmount(true)).toThrow('expected a number, got boolean true');
  });
});
