/**
 * How a source declares its fake server (src/sources/<name>/fake.ts), so that the demo, `npm run fake`, the memory
 * probe and the test harness start every registered source's fake without naming one.
 */
import type { ChurnOptions } from './churn.ts';
import type { FakeRateWindow } from './rate-limiter.ts';

/** Options every fake takes; each fake has more of its own. */
export interface CommonFakeOptions {
  seed?: number;
  count?: number;
  churn?: ChurnOptions | null;
  /** null turns the fake's rate limits off. */
  rateLimits?: FakeRateWindow[] | null;
}

export interface RunningFake {
  /** Listens on `port` (default: any free one) and returns the base URL the service is configured with. */
  start(port?: number): Promise<string>;
  stop(): Promise<void>;
}

export interface SourceFake<
  Fake extends RunningFake = RunningFake,
  Options extends CommonFakeOptions = CommonFakeOptions,
> {
  /** How what prints its address calls it (`Fake CareCloud`). */
  label: string;
  /** Its handle in the test harness (`h.careCloud`) and `npm run fake`'s port option (`careCloudPort`). */
  key: string;
  /** Its port under `npm run fake`. */
  port: number;
  create(options: Options): Fake;
  /** The variables that point the service at it once started: its base URL and credentials. */
  env(fake: Fake, baseUrl: string): Record<string, string>;
  /** What the test harness sets besides `env`: its fake's options and the source's limits out of the way. */
  test: { options: Options; env: Record<string, string> };
  /** The demo: its fake's options and data, and the settings that make the demo lively. */
  demo: { options: Options; seed(fake: Fake): void; env: Record<string, string>; note?: string };
  /** Pages through a slice of a started fake the way a sync does; returns what to print (src/fake/measure-memory.ts). */
  measure?(fake: Fake, baseUrl: string, count: number, pages: number): Promise<string>;
}
