/** The demo's "keeps changing a little". */
export interface ChurnOptions {
  /** Interval between rounds of changes. */
  everyMs: number;
  /** Random changes applied each round. */
  changes: number;
}

/**
 * Applies `step` `changes` times every `everyMs` until the returned function is called. The timer is
 * unref'd: a forgotten fake must not keep a test run or a CLI command alive.
 */
export function startChurn(options: ChurnOptions, step: (changes: number) => void): () => void {
  if (!(options.everyMs > 0) || !Number.isInteger(options.changes) || options.changes < 1) {
    throw new RangeError('churn needs everyMs > 0 and a whole number of changes >= 1');
  }
  const timer = setInterval(() => step(options.changes), options.everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
