/**
 * What `npm run sync` shows while it waits for its runs: on a terminal, a progress bar per source (cli-progress, on
 * stderr, so that stdout keeps only the summary); otherwise one line per source every 30 s, and at once when what
 * the run is doing changes (it starts waiting, and for what).
 */
import { MultiBar, Presets, type SingleBar } from 'cli-progress';
import { waitedFor, type OnceView } from '../../jobs/run-once.ts';
import { formatDuration } from '../sync/progress-log.ts';

export interface SyncProgress {
  update(view: OnceView): void;
  stop(): void;
}

export interface SyncProgressOptions {
  /** Where it is drawn. @default process.stderr */
  output?: NodeJS.WritableStream & { isTTY?: boolean };
  /** Draw bars (a terminal) or print lines. @default output.isTTY */
  tty?: boolean;
  /** Lines without a terminal, in ms. @default 30_000 */
  everyMs?: number;
}

const count = (n: number) => n.toLocaleString('en-US');

/** One view in words: "waiting for the daily budget until …", "12 pages, 3,000 of 25,000 records, 40/s, about 9 min left". */
export function describeView(view: OnceView): string {
  const of = view.estimatedTotal === null ? '' : ` of ~${count(view.estimatedTotal)}`;
  const rate = view.recordsPerSecond === null ? '' : `, ${count(Math.round(view.recordsPerSecond))}/s`;
  const eta = view.etaSeconds === null ? '' : `, about ${formatDuration(view.etaSeconds)} left`;
  const read = `${count(view.pages)} pages, ${count(view.records)}${of} records`;
  const progress = `${read}${rate}${eta}`;
  if (view.state === 'queued') return 'queued';
  if (view.state === 'running') return progress;
  const waiting = view.waiting!;
  const until = waiting.until === null ? '' : ` until ${waiting.until.toISOString()}`;
  if (waiting.behind) return `waiting ${waitedFor(waiting)}${until}; it has read ${progress}`;
  // Its own pace means nothing while it waits: what it has read so far, no ETA.
  return `waiting ${waitedFor(waiting)}${until}${view.pages > 0 ? ` (${read} so far)` : ''}`;
}

/** What changes call for a line at once: the state, and what it waits for. */
const stateOf = (view: OnceView) => `${view.state}:${view.waiting ? waitedFor(view.waiting) : ''}`;

export function createSyncProgress(options: SyncProgressOptions = {}): SyncProgress {
  const output = options.output ?? process.stderr;
  const tty = options.tty ?? output.isTTY === true;
  const everyMs = options.everyMs ?? 30_000;
  if (tty) {
    const bars = new MultiBar(
      {
        stream: output as NodeJS.WriteStream,
        format: '{source} |{bar}| {what}',
        barsize: 24,
        hideCursor: true,
        clearOnComplete: false,
        stopOnComplete: false,
      },
      Presets.shades_classic,
    );
    const bySource = new Map<string, SingleBar>();
    return {
      update(view) {
        const total = Math.max(view.estimatedTotal ?? 0, view.records, 1);
        const payload = { source: view.source.padEnd(10), what: describeView(view) };
        const bar = bySource.get(view.source);
        if (!bar) bySource.set(view.source, bars.create(total, view.records, payload));
        else {
          bar.setTotal(total);
          bar.update(view.records, payload);
        }
      },
      stop: () => bars.stop(),
    };
  }
  const last = new Map<string, { at: number; state: string }>();
  return {
    update(view) {
      const now = Date.now();
      const seen = last.get(view.source);
      const state = stateOf(view);
      if (seen && seen.state === state && now - seen.at < everyMs) return;
      last.set(view.source, { at: now, state });
      output.write(`${view.source}: ${describeView(view)}\n`);
    },
    stop() {},
  };
}
