/**
 * How long a number of requests takes under rolling-window limits (e.g. 5 a second and 120 a minute), as the
 * product's limiter hands out slots: each request at the earliest moment every window allows, the API's own
 * time left out (at the real limits it is far shorter than the wait for a slot).
 */
import type { RateWindow } from '../src/config-fields.ts';

/** Milliseconds from the first request's slot to the last one's, for `requests` requests under `limits`. */
export function projectedMs(requests: number, limits: RateWindow[]): number {
  const times = new Float64Array(Math.max(0, requests));
  for (let i = 1; i < requests; i++) {
    let at = times[i - 1]!;
    // The i-th request waits until the request `max` places before it leaves each window.
    for (const { max, windowMs } of limits) if (i >= max) at = Math.max(at, times[i - max]! + windowMs);
    times[i] = at;
  }
  return requests > 0 ? times[requests - 1]! : 0;
}
