/** At most `max` requests in any rolling `windowMs`. Same shape as the service's own RateWindow. */
export interface FakeRateWindow {
  max: number;
  windowMs: number;
}

/** Timestamps in arrival order; old ones drop off the front. */
function createTimeQueue() {
  let items: number[] = [];
  let head = 0;
  return {
    push(t: number) {
      items.push(t);
    },
    /** Drops entries at or before `cutoff`: the rolling window is (now - windowMs, now]. */
    dropThrough(cutoff: number) {
      while (head < items.length && items[head]! <= cutoff) head++;
      if (head > 1024 && head * 2 > items.length) {
        items = items.slice(head);
        head = 0;
      }
    },
    get size() {
      return items.length - head;
    },
    get first() {
      return items[head];
    },
  };
}

type TimeQueue = ReturnType<typeof createTimeQueue>;

function perAccount(windows: readonly FakeRateWindow[]) {
  const queues = new Map<string, TimeQueue[]>();
  return {
    of(account: string): TimeQueue[] {
      let list = queues.get(account);
      if (!list) {
        list = windows.map(() => createTimeQueue());
        queues.set(account, list);
      }
      return list;
    },
    clear: () => queues.clear(),
  };
}

export type Admission = { allowed: true } | { allowed: false; retryAfterMs: number };

/**
 * Rolling-window limits per account, as a strict API gateway enforces them. Only admitted requests use up
 * the quota, so a client that waits as told gets through.
 */
export function createRateLimiter(windows: readonly FakeRateWindow[]) {
  const accounts = perAccount(windows);
  return {
    admit(account: string, at: number): Admission {
      const queues = accounts.of(account);
      let retryAfterMs = 0;
      windows.forEach((window, i) => {
        const queue = queues[i]!;
        queue.dropThrough(at - window.windowMs);
        if (queue.size >= window.max) retryAfterMs = Math.max(retryAfterMs, queue.first! + window.windowMs - at);
      });
      if (retryAfterMs > 0) return { allowed: false, retryAfterMs };
      for (const queue of queues) queue.push(at);
      return { allowed: true };
    },
  };
}

/** The most requests that arrived (admitted or not) in any rolling window of each configured length. */
export function createWindowPeaks(windows: readonly FakeRateWindow[]) {
  const accounts = perAccount(windows);
  let peaks = windows.map(() => 0);
  return {
    observe(account: string, at: number) {
      const queues = accounts.of(account);
      windows.forEach((window, i) => {
        const queue = queues[i]!;
        queue.dropThrough(at - window.windowMs);
        queue.push(at);
        peaks[i] = Math.max(peaks[i]!, queue.size);
      });
    },
    peaks: () => windows.map((window, i) => ({ windowMs: window.windowMs, limit: window.max, peak: peaks[i]! })),
    reset() {
      accounts.clear();
      peaks = windows.map(() => 0);
    },
  };
}
