/**
 * Plays the data side of a chaos schedule on the fakes: changes between runs, changes while a scan pages
 * (through `store.onListRequest`, some aimed at the edge of the page being requested), bad records. Keeps
 * what the stores cannot tell afterwards (keys hard-deleted, malformed records inserted) for the comparison.
 */
import { isServiceCode } from '../../src/fake/carecloud-data.ts';
import type { FakeCareCloud } from '../../src/fake/carecloud.ts';
import type { FakeCin7 } from '../../src/fake/cin7.ts';
import { parseCin7Date } from '../../src/fake/cin7-dates.ts';
import { parseWall } from '../../src/fake/zone-table.ts';
import type { ListRequestInfo } from '../../src/fake/list-hooks.ts';
import { emptyHistory, type SourceHistory } from './ground-truth.ts';
import type { SourceName } from './queue-runs.ts';
import type { ChaosEvent, Change } from './schedule.ts';

export type Counts = Record<string, number>;

export const bump = (counts: Counts, key: string, by = 1) => {
  counts[key] = (counts[key] ?? 0) + by;
};

interface Armed {
  change: Change;
  countdown: number;
  boundary: boolean;
  repeat: number;
  /** Count only requests for a second or later page of an incremental scan. */
  deepOnly?: boolean;
  /** Called once the change has been made (its last repeat). */
  onDone?: () => void;
}

/**
 * A request for the third or a later page of an incremental scan (CareCloud: DESC, offset at least two
 * pages; Cin7: with a where). Rows skipped that deep stay skipped: the next incremental run's first page
 * re-reads only one page below its threshold.
 */
function isDeepIncremental(source: SourceName, query: URLSearchParams): boolean {
  if (source === 'carecloud') {
    return (
      (query.get('sort_direction') ?? '').toUpperCase() === 'DESC' &&
      Number(query.get('offset') ?? 0) >= 2 * Number(query.get('count') ?? 100) - 10
    );
  }
  return [...query.keys()].some((k) => k.toLowerCase() === 'where');
}

/** Where in the list a page request starts and how long the page is, in the order the fake serves it. */
interface PageWindow {
  /** Keys in the order served for this request (filters applied). */
  order: string[];
  first: number;
  size: number;
}

export class SourceChaos {
  readonly history: Record<SourceName, SourceHistory> = { carecloud: emptyHistory(), cin7: emptyHistory() };
  /** Changes made, by source and kind (`carecloud update`, `cin7 redeem during paging at a page boundary`…). */
  readonly changes: Counts = {};
  readonly malformed: Counts = {};
  private readonly armed: Record<SourceName, Armed[]> = { carecloud: [], cin7: [] };
  private readonly removers: (() => void)[] = [];
  /** Keys stored by a completed sync before the chaos (so a hard-deleted one must be in the table, deleted). */
  private stored: Record<SourceName, Set<string>> = { carecloud: new Set(), cin7: new Set() };

  constructor(
    private readonly careCloud: FakeCareCloud,
    private readonly cin7: FakeCin7,
    /** Told about every change made while a scan pages, with the request it was made before. */
    private readonly trace: (line: string) => void = () => undefined,
  ) {}

  /** Installs the list hooks; `stored` = keys in the table when the chaos starts. */
  start(stored: Record<SourceName, Set<string>>): void {
    this.stored = stored;
    this.removers.push(this.careCloud.store.onListRequest((info) => this.onList('carecloud', info)));
    this.removers.push(this.cin7.store.onListRequest((info) => this.onList('cin7', info)));
  }

  stopped = false;

  /** Removes the hooks and forgets armed changes. */
  stop(): void {
    this.stopped = true;
    for (const remove of this.removers.splice(0)) remove();
    this.armed.carecloud.length = 0;
    this.armed.cin7.length = 0;
  }

  /** Applies one change now, between or during runs. */
  changeNow(change: Change, label = ''): void {
    this.change(change, null, label);
  }

  /**
   * Arms a hard-delete burst of `count` records just before the page of the `afterRequests`-th request for
   * a second or later page of an incremental scan.
   */
  armBurst(source: SourceName, afterRequests: number, count: number): Promise<void> {
    return new Promise((resolve) => {
      this.armed[source].push({
        change: { source, op: 'hard-delete-burst', count, pick: 0 },
        countdown: afterRequests,
        boundary: true,
        repeat: 1,
        deepOnly: true,
        onDone: resolve,
      });
    });
  }

  apply(event: Extract<ChaosEvent, { kind: 'change' | 'during-paging' | 'malformed' }>): void {
    if (event.kind === 'change') {
      this.change(event.change, null, '');
    } else if (event.kind === 'during-paging') {
      this.armed[event.change.source].push({
        change: event.change,
        countdown: event.afterRequests,
        boundary: event.boundary,
        repeat: event.repeat,
        deepOnly: event.deepOnly,
      });
    } else if (event.source === 'carecloud') {
      this.history.carecloud.malformed.push({
        kind: event.malformed,
        record: this.careCloud.store.insertMalformed(event.malformed),
      });
      bump(this.malformed, `carecloud ${event.malformed}`);
    } else {
      this.history.cin7.malformed.push({
        kind: event.malformed,
        record: this.cin7.store.insertMalformed(event.malformed),
      });
      bump(this.malformed, `cin7 ${event.malformed}`);
    }
  }

  private onList(source: SourceName, info: ListRequestInfo): void {
    const due: Armed[] = [];
    for (const armed of this.armed[source]) {
      if (armed.deepOnly && !isDeepIncremental(source, info.query)) continue;
      if (--armed.countdown <= 0) due.push(armed);
    }
    for (const armed of due) {
      const window = armed.boundary ? this.pageWindow(source, info.query) : null;
      this.trace(`before ${source} list request ${info.query.toString()}: ${JSON.stringify(armed.change)}`);
      this.change(armed.change, window, armed.boundary ? ' during paging at a page boundary' : ' during paging');
      armed.repeat--;
      if (armed.repeat > 0) {
        armed.countdown = 1;
      } else {
        this.armed[source].splice(this.armed[source].indexOf(armed), 1);
        armed.onDone?.();
      }
    }
  }

  /** The served order for a list request, rebuilt from the store (ties by insertion order, as the fake does). */
  private pageWindow(source: SourceName, query: URLSearchParams): PageWindow | null {
    if (source === 'carecloud') {
      const offset = Number(query.get('offset') ?? 0);
      const count = Number(query.get('count') ?? 100);
      const desc = (query.get('sort_direction') ?? 'ASC').toUpperCase() === 'DESC';
      const live = this.careCloud.store.all().filter((v) => !isServiceCode(v.code));
      const keyed = live.map((v, i) => ({ id: v.voucher_id, key: parseWall(v.last_change), i }));
      keyed.sort((a, b) => a.key - b.key || a.i - b.i);
      if (desc) keyed.reverse();
      return { order: keyed.map((k) => k.id), first: offset, size: count };
    }
    const param = (name: string) => [...query].find(([k]) => k.toLowerCase() === name)?.[1];
    const page = Number(param('page') ?? 1);
    const rows = Math.min(250, Number(param('rows') ?? 50));
    const since = /CreatedDate>='([^']+)'/i.exec(param('where') ?? '')?.[1];
    const from = since === undefined ? Number.NEGATIVE_INFINITY : parseCin7Date(since);
    const keyed = this.cin7.store
      .all()
      .map((v, i) => ({ id: v.code, key: parseCin7Date(v.createdDate), i }))
      .filter((k) => k.key >= from);
    keyed.sort((a, b) => a.key - b.key || a.i - b.i);
    return { order: keyed.map((k) => k.id), first: (page - 1) * rows, size: rows };
  }

  /** A key for a change: at the page's edge when a window is given, else chosen by `pick`. */
  private target(source: SourceName, pick: number, window: PageWindow | null): string | undefined {
    if (window && window.order.length > 0) {
      // The last record of the page, the first of the next one, or the first of this one.
      const edges = [window.first + window.size - 1, window.first + window.size, window.first];
      const index = Math.min(window.order.length - 1, Math.max(0, edges[Math.floor(pick * edges.length)]!));
      return window.order[index];
    }
    const keys =
      source === 'carecloud'
        ? this.careCloud.store
            .all()
            .filter((v) => !isServiceCode(v.code))
            .map((v) => v.voucher_id)
        : this.cin7.store.all().map((v) => v.code);
    return keys.length === 0 ? undefined : keys[Math.floor(pick * keys.length)];
  }

  private hardDeleted(source: SourceName, key: string): void {
    this.history[source].hardDeleted.set(key, { mustBePresent: this.stored[source].has(key) });
  }

  /** Keys next to the requested page: `before` it (already read) or after it; random ones between runs. */
  private neighbours(
    source: SourceName,
    count: number,
    pick: number,
    window: PageWindow | null,
    side: 'before' | 'after',
  ): string[] {
    if (window) {
      const from = side === 'before' ? Math.max(0, window.first - count) : window.first + window.size;
      return window.order.slice(from, side === 'before' ? window.first : from + count);
    }
    const keys =
      source === 'carecloud'
        ? this.careCloud.store
            .all()
            .filter((v) => !isServiceCode(v.code))
            .map((v) => v.voucher_id)
        : this.cin7.store.all().map((v) => v.code);
    const start = Math.floor(pick * keys.length);
    return keys.slice(start, start + count);
  }

  private change(change: Change, window: PageWindow | null, where: string): void {
    const label = `${change.source} ${change.op}${where}`;
    if (change.op === 'hard-delete-burst' || change.op === 'update-burst') {
      const keys = this.neighbours(
        change.source,
        change.count,
        change.pick,
        window,
        change.op === 'hard-delete-burst' ? 'before' : 'after',
      );
      for (const key of keys) {
        if (change.op === 'update-burst') {
          if (change.source === 'carecloud') this.careCloud.store.update(key, { note: `chaos ${label}` });
          else this.cin7.store.update(key, { description: `chaos ${label}` });
        } else if (
          change.source === 'carecloud' ? this.careCloud.store.hardDelete(key) : this.cin7.store.hardDelete(key)
        ) {
          this.hardDeleted(change.source, key);
        }
      }
      bump(this.changes, label, keys.length);
      return;
    }
    if (change.source === 'carecloud') {
      const store = this.careCloud.store;
      switch (change.op) {
        case 'insert':
          for (let i = 0; i < change.count; i++) store.insert();
          bump(this.changes, label, change.count);
          return;
        case 'same-second': {
          // Many records sharing one last_change second, some of them existing records moved onto it.
          const second = store.nowLocal();
          for (let i = 0; i < change.inserts; i++) store.insert({ last_change: second });
          const keys = store
            .all()
            .filter((v) => !isServiceCode(v.code))
            .map((v) => v.voucher_id);
          for (let i = 0; i < change.updates && keys.length > 0; i++) {
            store.update(keys[Math.floor(((change.pick + i * 0.618_034) % 1) * keys.length)]!, {
              last_change: second,
              note: `same second ${second}`,
            });
          }
          bump(this.changes, label, change.inserts + change.updates);
          return;
        }
        default: {
          const key = this.target('carecloud', change.pick, window);
          if (key === undefined) return;
          if (change.op === 'update')
            store.update(key, { note: `chaos ${label}`, value: 1 + Math.round(change.pick * 500) / 4 });
          else if (change.op === 'soft-delete') store.softDelete(key);
          else if (store.hardDelete(key)) this.hardDeleted('carecloud', key);
          bump(this.changes, label);
          return;
        }
      }
    }
    const store = this.cin7.store;
    switch (change.op) {
      case 'insert':
        for (let i = 0; i < change.count; i++) store.insert();
        bump(this.changes, label, change.count);
        return;
      case 'same-second': {
        const first = store.insert();
        for (let i = 1; i < change.inserts; i++) store.insert({ createdDate: first.createdDate });
        bump(this.changes, label, change.inserts);
        return;
      }
      default: {
        const key = this.target('cin7', change.pick, window);
        if (key === undefined) return;
        if (change.op === 'redeem') {
          const voucher = store.get(key);
          const balance = voucher ? voucher.amount - voucher.redeemedAmount : 0;
          if (balance <= 0) {
            store.update(key, { description: `chaos ${label} (nothing left to redeem)` });
          } else {
            store.redeem(key, Math.max(0.01, Math.round(balance * (0.2 + change.pick * 0.8) * 100) / 100));
          }
        } else if (change.op === 'update') {
          store.update(key, { description: `chaos ${label} ${change.pick.toFixed(4)}` });
        } else if (store.hardDelete(key)) {
          this.hardDeleted('cin7', key);
        }
        bump(this.changes, label);
      }
    }
  }
}
