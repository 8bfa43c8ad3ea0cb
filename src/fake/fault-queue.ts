/** A misbehaviour served instead of (or on top of) the normal answer to one request. */
export type Fault =
  /** An error status with a JSON error body; `retryAfter` (seconds) adds a Retry-After header. */
  | { kind: 'status'; status: number; retryAfter?: number }
  /** An HTML error page, as a proxy in front of the API would send. @default status 200 */
  | { kind: 'html'; status?: 200 | 502 }
  /** The normal JSON answer cut in half, status 200. */
  | { kind: 'truncated' }
  /** Status 200 with an empty body. */
  | { kind: 'empty' }
  /** Waits `ms`, then answers normally. */
  | { kind: 'delay'; ms: number }
  /** A list page with `by` more records than asked for. @default by half the page size, at least 1 */
  | { kind: 'oversize'; by?: number }
  /** A list page with `by` fewer records than asked for. @default by half the page size, at least 1 */
  | { kind: 'undersize'; by?: number };

/** Which requests a fault waits for. Cin7 has no login; a lookup by id or code is a `get`. */
export type FaultTarget = 'list' | 'login' | 'get' | 'any';
export type RequestKind = 'list' | 'login' | 'get' | 'other';

export interface InjectOptions {
  /** How many matching requests get the fault. @default 1 */
  times?: number;
  /** @default 'any' ('list' for oversize and undersize, which only make sense on a page) */
  on?: FaultTarget;
}

export interface FaultQueue {
  inject(fault: Fault, options?: InjectOptions): void;
  clear(): void;
  /** Faults still waiting to be served (each `times` counted). */
  readonly pending: number;
  /** Takes the first queued fault that matches a request of this kind. */
  take(kind: RequestKind): Fault | undefined;
}

export function createFaultQueue(): FaultQueue {
  const queue: Array<{ fault: Fault; on: FaultTarget; remaining: number }> = [];
  const pageOnly = (fault: Fault) => fault.kind === 'oversize' || fault.kind === 'undersize';
  return {
    inject(fault, { times = 1, on } = {}) {
      if (!Number.isInteger(times) || times < 1) throw new RangeError('times must be a whole number >= 1');
      queue.push({ fault, on: on ?? (pageOnly(fault) ? 'list' : 'any'), remaining: times });
    },
    clear() {
      queue.length = 0;
    },
    get pending() {
      return queue.reduce((sum, entry) => sum + entry.remaining, 0);
    },
    take(kind) {
      const index = queue.findIndex(
        (entry) => (entry.on === 'any' || entry.on === kind) && (!pageOnly(entry.fault) || kind === 'list'),
      );
      const entry = queue[index];
      if (!entry) return undefined;
      if (--entry.remaining === 0) queue.splice(index, 1);
      return entry.fault;
    },
  };
}
