import { describe, expect, it } from 'vitest';
import { estimateEta } from '../../src/status/eta.ts';
import { formatDuration, formatStatus } from '../../src/status/format-status.ts';
import { scheduleIntervalMs } from '../../src/status/schedule-interval.ts';
import type { SourceStatus, StatusReport } from '../../src/status/types.ts';
import { sourceStatus } from '../helpers/source-status.ts';

const AT = '2026-12-01T12:00:00.000Z';

function source(overrides: Partial<SourceStatus>): SourceStatus {
  return sourceStatus('cin7', {
    lastSuccessAt: '2026-12-01T11:55:00.000Z',
    freshnessSeconds: 300,
    nextRuns: [{ mode: 'incremental', at: '2026-12-01T12:05:00.000Z' }],
    queue: { waiting: 0, active: 0, delayed: 2, failed: 0 },
    rejectedOpen: 1234,
    limits: [{ window: '60s', windowSeconds: 60, used: 12, limit: 60 }],
    budget: { used: 4000, limit: 5000, windowSeconds: 86_400 },
    ...overrides,
  });
}

const report = (sources: SourceStatus[], serviceUp = true): StatusReport => ({
  at: AT,
  serviceUp,
  processes: serviceUp
    ? [{ id: 'a', role: 'all', host: 'box', pid: 42, sources: ['cin7'], startedAt: '2026-12-01T10:00:00.000Z' }]
    : [],
  sources,
});

describe('formatDuration', () => {
  it.each([
    [0, '0s'],
    [45, '45s'],
    [310, '5m 10s'],
    [3600, '1h'],
    [7380, '2h 3m'],
    [3 * 86_400 + 4 * 3600 + 59, '3d 4h'],
    [86_400 + 59, '1d'],
  ])('%d s is %s', (seconds, text) => expect(formatDuration(seconds)).toBe(text));
});

describe('formatStatus', () => {
  it('a running source: its progress with the ETA, limits, budget and next run', () => {
    const text = formatStatus(
      report([
        source({
          state: 'running',
          run: {
            id: '7',
            mode: 'full',
            startedAt: '2026-12-01T11:50:00.000Z',
            pages: 12,
            records: 3000,
            requests: 13,
            estimatedTotal: 25_000,
            rate: 5,
            etaSeconds: 4400,
          },
        }),
      ]),
    );
    expect(text).toContain('service: up (1 process: all box:42)');
    expect(text).toMatch(/^cin7 {2}RUNNING$/m);
    expect(text).toContain(
      'full since 2026-12-01 11:50:00Z: 12 pages, 3,000 of 25,000 records, 13 requests, 5.0/s, ETA 1h 13m',
    );
    expect(text).toContain('last success  2026-12-01 11:55:00Z (5m ago)');
    expect(text).toContain('5m (stale after 20m)');
    expect(text).toContain('incremental 2026-12-01 12:05:00Z (in 5m)');
    const due = formatStatus(report([source({ nextRuns: [{ mode: 'full', at: '2026-12-01T11:59:00.000Z' }] })]));
    expect(due).toContain('full 2026-12-01 11:59:00Z (due)');
    expect(text).toContain('12/60 per 60s');
    expect(text).toContain('4,000 of 5,000 in the last 24 hours (80 %)');
    expect(text).toContain('1,234 open');
  });

  it('a source waiting for its budget, a failing one, and the service down', () => {
    const text = formatStatus(
      report(
        [
          source({ state: 'waiting', waiting: { reason: 'daily_budget', until: '2026-12-01T15:00:00.000Z' } }),
          source({
            source: 'carecloud',
            state: 'failing',
            stale: true,
            consecutiveFailures: 3,
            lastError: { at: '2026-12-01T11:58:00.000Z', message: 'CareCloud answered 503\nwith a page of HTML' },
          }),
        ],
        false,
      ),
    );
    expect(text).toContain('service: DOWN (no worker heartbeat)');
    expect(text).toContain('for the daily budget, until 2026-12-01 15:00:00Z (in 3h)');
    expect(text).toMatch(/^carecloud {2}FAILING {2}STALE$/m);
    expect(text).toContain('3 in a row; last at 2026-12-01 11:58:00Z: CareCloud answered 503');
    expect(text).not.toContain('with a page of HTML');
  });

  it('the page size: configured, found at run time, still to find, being found', () => {
    const auto = { setting: 'auto' as const, ceiling: 1000, checkedAt: '2026-12-01T11:00:00.000Z' };
    const line = (pageSize: SourceStatus['pageSize']) =>
      formatStatus(report([source({ source: 'carecloud', pageSize })]))
        .split('\n')
        .find((l) => l.includes('page size'));
    expect(line(null)).toBeUndefined();
    expect(
      line({
        size: 250,
        setting: 'configured',
        found: false,
        accepted: null,
        refused: null,
        ceiling: null,
        checkedAt: null,
      }),
    ).toMatch(/page size +250 records a request \(configured\)$/);
    expect(line({ ...auto, size: 700, found: true, accepted: 700, refused: 701 })).toMatch(
      /page size +700 records a request, found at run time \(701 refused, at 2026-12-01 11:00:00Z\)$/,
    );
    expect(line({ ...auto, size: 1000, found: true, accepted: 1000, refused: null })).toContain(
      '1,000 records a request, found at run time (the most it asks for, accepted, at',
    );
    expect(line({ ...auto, size: 1000, found: false, accepted: null, refused: null, checkedAt: null })).toContain(
      'up to 1,000 records a request, to be found by the next run (auto)',
    );
    expect(line({ ...auto, size: 750, found: false, accepted: 500, refused: 1000 })).toContain(
      'finding it (auto): 500 accepted, 1,000 refused, at 2026-12-01 11:00:00Z; the next request asks for 750',
    );
  });

  it('a source without credentials says so', () => {
    const text = formatStatus(report([source({ configured: false, lastSuccessAt: null, freshnessSeconds: null })]));
    expect(text).toContain('cin7  not configured (its credentials are not set)');
    expect(text).toContain('last success  never');
  });
});

describe('scheduleIntervalMs', () => {
  const monday = new Date('2026-11-30T08:00:00Z');
  it('is the interval of an `every` schedule, and null when off', () => {
    expect(scheduleIntervalMs({ every: 300_000 })).toBe(300_000);
    expect(scheduleIntervalMs({ off: true })).toBeNull();
  });
  it('is the longest gap of a cron pattern, the weekend of a weekday one included', () => {
    expect(scheduleIntervalMs({ pattern: '0 3 * * *' }, monday)).toBe(86_400_000);
    expect(scheduleIntervalMs({ pattern: '*/15 * * * *' }, monday)).toBe(900_000);
    // Hourly 9–17 on weekdays: Friday 17:00 to Monday 09:00.
    expect(scheduleIntervalMs({ pattern: '0 9-17 * * 1-5' }, monday)).toBe(64 * 3_600_000);
  });
});

describe('estimateEta', () => {
  it('takes the slower of the measured pace and what the rate limit allows', () => {
    // 1,000 records in 10 s (100/s) at 100 records a request; the limit allows 0.5 requests/s = 50 records/s.
    const bound = estimateEta({ done: 1000, total: 2000, elapsedSeconds: 10, requests: 10, requestsPerSecond: 0.5 });
    expect(bound).toEqual({ rate: 100, etaSeconds: 20 });
    const paced = estimateEta({ done: 1000, total: 2000, elapsedSeconds: 100, requests: 10, requestsPerSecond: 10 });
    expect(paced).toEqual({ rate: 10, etaSeconds: 100 });
  });
  it('has no ETA without a total or before the first records', () => {
    expect(
      estimateEta({ done: 10, total: null, elapsedSeconds: 1, requests: 1, requestsPerSecond: 1 }).etaSeconds,
    ).toBe(null);
    expect(estimateEta({ done: 0, total: 10, elapsedSeconds: 1, requests: 1, requestsPerSecond: 1 }).rate).toBeNull();
  });
});
