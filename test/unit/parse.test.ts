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

  it('refuses a decimal comma rather than guessing', () => {
    expect(() => parseAmount('12,50')).toThrow('expected a number, got the string "12,50"');
    expect(() => parseAmount(true)).toThrow('expected a number, got boolean true');
  });
});
