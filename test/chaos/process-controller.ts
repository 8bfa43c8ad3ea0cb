/**
 * The service as real child processes, compiled and with its heap limit as `npm start` runs it
 * (`node --max-old-space-size=192 dist/src/cli/main.js start --role worker|scheduler`), and
 * what a chaos test does to them: SIGKILL at any moment, SIGTERM, restart. A process that exits without being
 * told to is a crash: it is recorded (with the end of its log) and, like a supervisor would, restarted.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { nodeArgsFor } from '../helpers/run-command.ts';

/** npm start's heap limit (package.json). */
const HEAP_LIMIT = '--max-old-space-size=192';

export type Role = 'worker' | 'scheduler';

export interface Crash {
  name: string;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The last lines the process wrote. */
  tail: string[];
  /** It never said it was running: it failed to start (e.g. PostgreSQL was restarting). */
  atStartUp: boolean;
}

const READY = 'voucher-sync is running';

/** Every child still alive, so that none outlives the test process (a timed-out test, a crash). */
const living = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of living) child.kill('SIGKILL');
});
const TAIL_LINES = 40;

/** One slot of the fleet: a role and the process currently filling it (replaced on restart). */
export class ServiceSlot {
  private child: ChildProcess | undefined;
  private readyPromise: Promise<void> = Promise.resolve();
  private exitPromise: Promise<void> = Promise.resolve();
  private expectExit = false;
  private tail: string[] = [];
  private log: WriteStream;
  starts = 0;

  constructor(
    readonly name: string,
    readonly role: Role,
    private readonly env: Record<string, string>,
    logDir: string,
    private readonly onCrash: (crash: Crash, slot: ServiceSlot) => void,
  ) {
    this.log = createWriteStream(join(logDir, `${name}.log`), { flags: 'a' });
    this.log.on('error', () => undefined);
  }

  private write(text: string): void {
    if (!this.log.writableEnded) this.log.write(text);
  }

  get pid(): number | undefined {
    return this.alive ? this.child?.pid : undefined;
  }

  get alive(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Starts a process in this slot (if none is alive) and resolves once it says it is running. */
  start(): Promise<void> {
    if (this.alive) return this.readyPromise;
    this.starts++;
    this.expectExit = false;
    // Compiled: a process started through tsx compiles the sources first, which under the suite's load (seeds in
    // parallel, each with its processes and fakes) took 40 to 50 s and made restarts miss their deadlines.
    const args = [HEAP_LIMIT, ...nodeArgsFor('src/cli/main.ts'), 'start', '--role', this.role];
    const child = spawn(process.execPath, args, {
      env: { PATH: process.env.PATH ?? '', ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    living.add(child);
    this.write(`\n==== start #${this.starts} pid ${child.pid} at ${new Date().toISOString()}\n`);
    let ready: () => void = () => undefined;
    let failed: (error: Error) => void = () => undefined;
    this.readyPromise = new Promise<void>((resolve, reject) => {
      ready = resolve;
      failed = reject;
    });
    this.readyPromise.catch(() => undefined);
    let seen = '';
    let running = false;
    const onData = (chunk: Buffer) => {
      const text = String(chunk);
      this.write(text);
      this.tail.push(...text.split('\n').filter((l) => l !== ''));
      if (this.tail.length > TAIL_LINES) this.tail.splice(0, this.tail.length - TAIL_LINES);
      if (!running) {
        // The line may be split across chunks, or followed in its chunk by pages of other output.
        const joined = seen + text;
        if (joined.includes(READY)) {
          running = true;
          ready();
        }
        seen = joined.slice(-READY.length);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    this.exitPromise = new Promise<void>((resolve) => {
      child.once('exit', (code, signal) => {
        living.delete(child);
        this.write(`==== exit pid ${child.pid} code ${code} signal ${signal} at ${new Date().toISOString()}\n`);
        failed(new Error(`${this.name} exited (code ${code}, signal ${signal}) before it was running`));
        if (!this.expectExit)
          this.onCrash({ name: this.name, code, signal, tail: [...this.tail], atStartUp: !running }, this);
        resolve();
      });
    });
    return this.readyPromise;
  }

  /** Sends `signal` and waits for the process to exit (SIGKILL after `graceMs` if it lingers). */
  async stop(signal: NodeJS.Signals = 'SIGKILL', graceMs = 20_000): Promise<void> {
    const child = this.child;
    if (!child || !this.alive) return;
    this.expectExit = true;
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    try {
      await this.exitPromise;
    } finally {
      clearTimeout(timer);
    }
  }

  async restart(signal: NodeJS.Signals = 'SIGKILL', downMs = 0): Promise<void> {
    await this.stop(signal);
    if (downMs > 0) await sleep(downMs);
    // A process that cannot start (PostgreSQL restarting) exits; the fleet's supervisor starts it again.
    await this.start().catch(() => undefined);
  }

  close(): Promise<void> {
    if (this.log.writableEnded) return Promise.resolve();
    return new Promise((resolve) => this.log.end(() => resolve()));
  }
}

/** The worker and scheduler processes of one test, with crash bookkeeping. */
export class Fleet {
  readonly workers: ServiceSlot[];
  readonly scheduler: ServiceSlot | undefined;
  readonly crashes: Crash[] = [];
  private restarting = true;

  constructor(options: { env: Record<string, string>; workers: number; scheduler: boolean; logDir: string }) {
    mkdirSync(options.logDir, { recursive: true });
    const onCrash = (crash: Crash, slot: ServiceSlot) => {
      this.crashes.push(crash);
      // A supervisor (systemd, Kubernetes) would start it again.
      if (this.restarting)
        void sleep(500).then(() => (this.restarting ? slot.start().catch(() => undefined) : undefined));
    };
    const env = { LOG_LEVEL: 'info', ...options.env };
    this.workers = Array.from(
      { length: options.workers },
      (_, i) => new ServiceSlot(`worker-${i + 1}`, 'worker', env, options.logDir, onCrash),
    );
    this.scheduler = options.scheduler
      ? new ServiceSlot('scheduler', 'scheduler', env, options.logDir, onCrash)
      : undefined;
  }

  get all(): ServiceSlot[] {
    return this.scheduler ? [...this.workers, this.scheduler] : [...this.workers];
  }

  async start(): Promise<void> {
    await Promise.all(this.all.map((slot) => slot.start()));
  }

  /** The worker slot whose process has this pid (the ledger's `worker` column is `host:pid`). */
  workerByPid(pid: number): ServiceSlot | undefined {
    return this.workers.find((w) => w.pid === pid);
  }

  /** Every slot running again (after chaos). */
  async ensureRunning(): Promise<void> {
    await Promise.all(this.all.map((slot) => slot.start()));
  }

  /** Stops everything; `signal` SIGTERM lets runs stop after their current page. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    this.restarting = false;
    await Promise.all(this.all.map((slot) => slot.stop(signal)));
    await Promise.all(this.all.map((slot) => slot.close()));
  }
}
