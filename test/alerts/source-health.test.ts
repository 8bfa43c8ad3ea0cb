import { describe, expect, it } from 'vitest';
import { eventsBetween, healthOf, HEALTHY, parseHealth, summarize } from '../../src/alerts/source-health.ts';
import type { SourceStatus } from '../../src/status/types.ts';
import { sourceStatus as healthyStatus } from '../helpers/source-status.ts';

function sourceStatus(overrides: Partial<SourceStatus> = {}): SourceStatus {
  return healthyStatus('cin7', {
    freshnessSeconds: 120,
    staleAfterSeconds: 1800,
    budget: { used: 100, limit: 5000, windowSeconds: 86_400 },
    ...overrides,
  });
}

const rules = { failingRuns: 3 };

describe('healthOf', () => {
  it('fails at ALERT_FAILING_RUNS failures in a row, not before', () => {
    expect(healthOf(sourceStatus({ consecutiveFailures: 2 }), rules).failing).toBe(false);
    expect(healthOf(sourceStatus({ consecutiveFailures: 3 }), rules).failing).toBe(true);
  });

  it('is stale as readStatus judges it', () => {
    expect(healthOf(sourceStatus({ stale: true }), rules).stale).toBe(true);
    expect(healthOf(sourceStatus({ stale: false }), rules).stale).toBe(false);
  });

  it('crosses the budget alert at 80 % of the daily budget', () => {
    const at = (used: number) =>
      healthOf(sourceStatus({ budget: { used, limit: 5000, windowSeconds: 86_400 } }), rules);
    expect(at(3999).budgetHigh).toBe(false);
    expect(at(4000).budgetHigh).toBe(true);
    expect(healthOf(sourceStatus({ budget: null }), rules).budgetHigh).toBe(false);
  });
});

describe('eventsBetween', () => {
  it('names each change of state, and nothing when none changed', () => {
    expect(eventsBetween(HEALTHY, HEALTHY)).toEqual([]);
    expect(eventsBetween(HEALTHY, { failing: true, stale: true, budgetHigh: false })).toEqual(['failing', 'stale']);
    expect(eventsBetween({ failing: true, stale: true, budgetHigh: true }, HEALTHY)).toEqual([
      'recovered',
      'fresh',
      'budget_ok',
    ]);
  });

  it('reads an unreadable stored state as healthy', () => {
    expect(parseHealth(null)).toEqual(HEALTHY);
    expect(parseHealth('{not json')).toEqual(HEALTHY);
    expect(parseHealth('{"failing":true}')).toEqual({ failing: true, stale: false, budgetHigh: false });
  });
});

describe('summarize', () => {
  it('names the source and what happened', () => {
    const failing = sourceStatus({
      consecutiveFailures: 4,
      lastError: { at: '2026-12-01T10:00:00.000Z', message: 'cin7 answered 401' },
    });
    expect(summarize('failing', failing, rules)).toBe(
      'cin7 is failing: 4 runs in a row failed (alert at 3); last error: cin7 answered 401',
    );
    expect(
      summarize('budget_high', sourceStatus({ budget: { used: 4100, limit: 5000, windowSeconds: 86_400 } }), rules),
    ).toBe('cin7 has used 4100 of its daily budget of 5000 requests (over 80 %)');
    expect(summarize('stale', sourceStatus({ freshnessSeconds: 7200 }), rules)).toMatch(
      /^cin7 is stale: its data is 2\.0 h old/,
    );
  });
});
