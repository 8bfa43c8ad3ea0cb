/**
 * Starts the fake server of every registered source, as each source declares it (src/sources/<name>/fake.ts), and
 * gathers the variables that point the service at them: what the demo, `npm run fake` and the test harness share.
 */
import type { ChurnOptions } from './churn.ts';
import type { CommonFakeOptions, RunningFake, SourceFake } from './source-fake.ts';
import { sources } from '../sources/index.ts';

export interface StartedFake {
  /** The source's name. */
  name: string;
  fake: SourceFake;
  server: RunningFake;
  /** Where it listens. */
  url: string;
}

export interface StartedFakes {
  started: StartedFake[];
  /** Every fake's base URL and credentials, as the service's variables. */
  env: Record<string, string>;
  stop(): Promise<void>;
}

/**
 * @param setup per source: its fake's options, and the port to listen on (default any free one).
 * @param via the base URL the service is to use instead of the fake's own (a proxy in front of it). Default: its own.
 */
export async function startFakes(
  setup: (fake: SourceFake) => { options: CommonFakeOptions; port?: number },
  via: (name: string, url: string) => Promise<string> = async (_name, url) => url,
): Promise<StartedFakes> {
  const started: StartedFake[] = [];
  const env: Record<string, string> = {};
  const stop = async () => void (await Promise.allSettled(started.map((s) => s.server.stop())));
  try {
    for (const { name, fake } of sources) {
      const { options, port } = setup(fake);
      const server = fake.create(options);
      const url = await server.start(port);
      started.push({ name, fake, server, url });
      Object.assign(env, fake.env(server, await via(name, url)));
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { started, env, stop };
}

/** The demo's fakes: each source's demo data (malformed records included) and the settings that make it lively. */
export async function startDemoFakes(options: { seed: number; churn?: ChurnOptions }): Promise<StartedFakes> {
  const fakes = await startFakes((fake) => ({
    options: { ...fake.demo.options, seed: options.seed, churn: options.churn },
  }));
  for (const { fake, server } of fakes.started) {
    fake.demo.seed(server);
    Object.assign(fakes.env, fake.demo.env);
  }
  return fakes;
}
