import { describe, expect, it } from 'vitest';
import { planEstimate } from '../../src/sync/read-slices.ts';

describe('what a plan of slices says of the scan size', () => {
  it('a plan of offset ranges: one slice past the last start (the last slice is open-ended)', () => {
    const slices = [0, 95, 190].map((start, i) => ({ start, end: i < 2 ? start + 95 : null, anchors: [] }));
    expect(planEstimate(slices)).toBe(285);
  });

  it('windows of cursors, or anything else, say nothing', () => {
    expect(
      planEstimate([
        { from: null, before: '2026-01-01T00:00:00Z' },
        { from: '2026-01-01T00:00:00Z', before: null },
      ]),
    ).toBeNull();
    expect(planEstimate([])).toBeNull();
    expect(planEstimate([{ start: 0, end: 10 }, 'odd'])).toBeNull();
  });
});
