/**
 * How long a run still needs. A run is bound by whichever is slower: the pace it has kept so far, or the
 * source's rate limit (requests per second at most, times the records a request has brought on average). The
 * second matters at the start of a run, when bursts the limiter allowed make the measured pace look faster than
 * it can last.
 */
export interface EtaInput {
  /** Records read so far. */
  done: number;
  /** Records expected in all; null when unknown (then there is no ETA). */
  total: number | null;
  elapsedSeconds: number;
  /** Requests made so far. */
  requests: number;
  /** The tightest sustained rate the source's limits allow, in requests per second; null = unlimited. */
  requestsPerSecond: number | null;
}

export function estimateEta(input: EtaInput): { rate: number | null; etaSeconds: number | null } {
  const { done, total, elapsedSeconds, requests, requestsPerSecond } = input;
  const rate = done > 0 && elapsedSeconds > 0 ? done / elapsedSeconds : null;
  if (total === null || rate === null) return { rate, etaSeconds: null };
  const left = Math.max(total - done, 0);
  let eta = left / rate;
  if (requestsPerSecond !== null && requests > 0) eta = Math.max(eta, left / ((done / requests) * requestsPerSecond));
  return { rate, etaSeconds: Math.round(eta) };
}

/**
 * The sustained request rate a set of rolling windows allows: the smallest max ÷ window. The daily budget is left
 * out: what it allows depends on what is left of it, not on a rate (a run it stops is waiting, with its own time).
 */
export function sustainedRate(windows: { max: number; windowMs: number }[]): number | null {
  const rates = windows.map((w) => w.max / (w.windowMs / 1000));
  return rates.length === 0 ? null : Math.min(...rates);
}
