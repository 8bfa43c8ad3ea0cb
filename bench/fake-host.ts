/** The driver's side of a fake API running in its own process (bench/fake-process.ts). */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { WindowPeak } from '../src/fake/fake-server.ts';
import type { FakeRateWindow } from '../src/fake/rate-limiter.ts';
import { REPO_ROOT, onCleanup, peakRss, cpuMs } from './infra.ts';

export type SourceName = 'carecloud' | 'cin7';

export interface FakeProcessOptions {
  source: SourceName;
  count: number;
  latencyMs: number;
  /** null: no limits (the fake answers every request). */
  rateLimits: FakeRateWindow[] | null;
  seed: number;
}

export interface FakeReady {
  url: string;
  /** Vouchers the API lists: what a complete sync must store. */
  listed: number;
  /** The service's environment for this source (base URL and credentials). */
  env: Record<string, string>;
}

export interface FakeStatsSnapshot {
  requests: number;
  byEndpoint: Record<string, number>;
  byStatus: Record<string, number>;
  rateLimited: number;
  limitViolations: number;
  maxInWindow: WindowPeak[];
}

export type FakeRequestMessage = { id: number; command: 'stats' | 'reset' | 'arrivals' | 'stop' };
export type FakeReply = { id: number; result: unknown };

export interface FakeHost extends FakeReady {
  pid: number;
  /** Seconds the fake took to build its data and start. */
  startupMs: number;
  stats(): Promise<FakeStatsSnapshot>;
  reset(): Promise<void>;
  /** Arrival times (epoch ms) of the list requests served since the last reset. */
  arrivals(): Promise<number[]>;
  peakRss(): number | null;
  cpuMs(): number | null;
  stop(): Promise<void>;
}

export async function startFake(options: FakeProcessOptions): Promise<FakeHost> {
  const started = performance.now();
  const child: ChildProcess = fork(
    fileURLToPath(new URL('./fake-process.ts', import.meta.url)),
    [JSON.stringify(options)],
    {
      cwd: REPO_ROOT,
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    },
  );
  const kill = onCleanup(`fake ${options.source} ${child.pid}`, async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const pending = new Map<number, (result: unknown) => void>();
  let nextId = 1;
  let ready: ((value: FakeReady) => void) | undefined;
  const readyPromise = new Promise<FakeReady>((resolve) => (ready = resolve));
  child.on('message', (message: { ready?: FakeReady } & Partial<FakeReply>) => {
    if (message.ready) ready?.(message.ready);
    else if (message.id !== undefined) {
      pending.get(message.id)?.(message.result);
      pending.delete(message.id);
    }
  });
  const exited = once(child, 'exit');
  let dead = false;
  void exited.then(([code]) => {
    dead = true;
    for (const settle of pending.values())
      settle(new Error(`the fake ${options.source} process exited (${String(code)})`));
    pending.clear();
  });
  const info = await Promise.race([
    readyPromise,
    exited.then(([code]) => {
      throw new Error(`the fake ${options.source} process exited with ${String(code)} before it was ready`);
    }),
  ]);
  const ask = <T>(command: FakeRequestMessage['command']) =>
    new Promise<T>((resolve, reject) => {
      if (dead) return reject(new Error(`the fake ${options.source} process has exited`));
      const id = nextId++;
      pending.set(id, (result) => (result instanceof Error ? reject(result) : resolve(result as T)));
      child.send({ id, command } satisfies FakeRequestMessage);
    });
  const pid = child.pid!;
  return {
    ...info,
    pid,
    startupMs: performance.now() - started,
    stats: () => ask<FakeStatsSnapshot>('stats'),
    reset: () => ask<null>('reset').then(() => undefined),
    arrivals: () => ask<number[]>('arrivals'),
    peakRss: () => peakRss(pid),
    cpuMs: () => cpuMs(pid),
    async stop() {
      if (child.exitCode === null && child.signalCode === null && child.connected) {
        await Promise.race([ask('stop').catch(() => undefined), exited]);
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
      await kill();
    },
  };
}
