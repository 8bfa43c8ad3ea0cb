import { describe, expect, it } from 'vitest';
import {
  highestCursor,
  nextWatermark,
  raiseHighMark,
  scanThreshold,
  wallClockSafeThreshold,
} from '../../src/sync/cursor.ts';
import type { VoucherRow } from '../../src/types.ts';

const row = (sourceModifiedAt: string | null): VoucherRow => ({
  sourceId: 'x',
  code: null,
  customerId: null,
  status: 'active',
  amount: null,
  redeemedAmount: null,
  validFrom: null,
  validTo: null,
  appliedAt: null,
  sourceCreatedAt: null,
  sourceModifiedAt,
  isDeleted: false,
  raw: {},
});

describe('cursor math', () => {
  it('finds the highest cursor and ignores rows without one', () => {
    expect(
      highestCursor([row('2024-01-01T00:00:00.000Z'), row(null), row('2024-03-01T00:00:00.000Z')], 'sourceModifiedAt'),
    ).toBe(Date.parse('2024-03-01T00:00:00Z'));
    expect(highestCursor([row(null)], 'sourceModifiedAt')).toBeNull();
  });

  it('only raises the high mark', () => {
    expect(raiseHighMark(null, Date.parse('2024-01-01T00:00:00Z'))).toBe('2024-01-01T00:00:00.000Z');
    expect(raiseHighMark('2024-02-01T00:00:00.000Z', Date.parse('2024-01-01T00:00:00Z'))).toBe(
      '2024-02-01T00:00:00.000Z',
    );
    expect(raiseHighMark('2024-02-01T00:00:00.000Z', null)).toBe('2024-02-01T00:00:00.000Z');
  });

  it('never moves the watermark back, and never past the scan start plus tolerance', () => {
    const start = new Date('2024-06-01T12:00:00Z');
    expect(nextWatermark(null, '2024-06-01T11:00:00.000Z', start)).toEqual(new Date('2024-06-01T11:00:00Z'));
    expect(nextWatermark(new Date('2024-06-01T11:30:00Z'), '2024-06-01T11:00:00.000Z', start)).toEqual(
      new Date('2024-06-01T11:30:00Z'),
    );
    expect(nextWatermark(null, '2030-01-01T00:00:00.000Z', start)).toEqual(new Date('2024-06-01T12:05:00Z'));
    expect(nextWatermark(new Date('2024-06-01T11:30:00Z'), null, start)).toEqual(new Date('2024-06-01T11:30:00Z'));
  });

  it('starts an incremental scan a lookback below the watermark', () => {
    expect(scanThreshold(new Date('2024-06-01T12:00:00Z'), 600_000)).toEqual(new Date('2024-06-01T11:50:00Z'));
    expect(scanThreshold(null, 600_000)).toBeNull();
  });
});

describe('wallClockSafeThreshold', () => {
  const zone = 'Europe/Prague';

  it('lowers the threshold by an hour when the clocks went back since it', () => {
    // Prague falls back from 03:00 CEST to 02:00 CET at 2024-10-27T01:00Z.
    const threshold = new Date('2024-10-27T00:45:00Z');
    expect(wallClockSafeThreshold(threshold, new Date('2024-10-27T01:20:00Z'), zone)).toEqual(
      new Date('2024-10-26T23:45:00Z'),
    );
    expect(wallClockSafeThreshold(threshold, new Date('2024-10-29T12:00:00Z'), zone)).toEqual(
      new Date('2024-10-26T23:45:00Z'),
    );
  });

  it('leaves it alone otherwise, the spring change included', () => {
    const threshold = new Date('2024-10-27T01:30:00Z');
    expect(wallClockSafeThreshold(threshold, new Date('2024-10-27T02:00:00Z'), zone)).toEqual(threshold);
    const spring = new Date('2024-03-31T00:30:00Z');
    expect(wallClockSafeThreshold(spring, new Date('2024-03-31T02:00:00Z'), zone)).toEqual(spring);
    expect(wallClockSafeThreshold(spring, new Date('2024-03-31T02:00:00Z'), 'UTC')).toEqual(spring);
  });
});
