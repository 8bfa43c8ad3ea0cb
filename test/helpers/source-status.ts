/**
 * A source's entry of the status report (src/status/types.ts), healthy and idle, for tests of what is derived from
 * it (alerts, metrics, the text output): each test states only the fields it is about.
 */
import type { SourceStatus } from '../../src/status/types.ts';

export function sourceStatus(source: string, overrides: Partial<SourceStatus> = {}): SourceStatus {
  return {
    source,
    configured: true,
    state: 'idle',
    paused: null,
    lastSuccessAt: '2026-12-01T10:00:00.000Z',
    freshnessSeconds: 60,
    stale: false,
    staleAfterSeconds: 1200,
    run: null,
    waiting: null,
    nextRuns: [],
    queue: { waiting: 0, active: 0, delayed: 0, failed: 0 },
    rejectedOpen: 0,
    limits: [],
    budget: { used: 10, limit: 5000, windowSeconds: 86_400 },
    plan: null,
    pageSize: null,
    recent429: 0,
    consecutiveFailures: 0,
    lastError: null,
    ...overrides,
  };
}
