import { createCin7Data, round2, statusOf, type Cin7Voucher } from './cin7-data.ts';
import { parseCin7Date } from './cin7-dates.ts';
import { comparable, matches, type Condition, type OrderTerm } from './cin7-query.ts';
import { createListHooks, type ListHook } from './list-hooks.ts';
import { createOrderedIndex } from './ordered-index.ts';
import { createRandom, hash32 } from './random.ts';

export type Cin7MalformedKind = 'missing-code' | 'zero-date' | 'comma-number' | 'wrong-type' | 'oversized-string';

export const CIN7_MALFORMED_KINDS: readonly Cin7MalformedKind[] = [
  'missing-code',
  'zero-date',
  'comma-number',
  'wrong-type',
  'oversized-string',
];

type Raw = Record<string, unknown>;

/** The ground truth of the fake Cin7, readable and changeable from a test while a sync runs. */
export interface Cin7Store {
  /** Vouchers present, malformed ones included. */
  readonly size: number;
  /** Every well-formed voucher in insertion order. O(n): meant for tests. */
  all(): Cin7Voucher[];
  malformed(): Raw[];
  get(code: string): Cin7Voucher | undefined;
  /** Adds a voucher created now; `partial` overrides any field. */
  insert(partial?: Partial<Cin7Voucher>): Cin7Voucher;
  /** Redeems `amount`: redeemedAmount, redeemedCount and status change, no date does. */
  redeem(code: string, amount: number): Cin7Voucher;
  /** Applies `patch` as is; Cin7 keeps no modified date, so nothing else changes. */
  update(code: string, patch: Partial<Cin7Voucher>): Cin7Voucher;
  /** The voucher vanishes; later rows shift up. False when it did not exist. */
  hardDelete(code: string): boolean;
  /** Adds one malformed record created now (unless the date is the defect) and returns it. */
  insertMalformed(kind: Cin7MalformedKind): Raw;
  /** Applies `changes` random inserts, redemptions, updates and (rarely) deletions. */
  churn(changes?: number): void;
  /** Runs `fn` before each list request is served; returns the function that removes it. */
  onListRequest(fn: ListHook): () => void;
}

export interface Cin7StoreOptions {
  seed: number;
  count: number;
  anchor: number;
  zone: string;
  now: () => number;
}

export interface Cin7ListQuery {
  conditions: Condition[];
  order: OrderTerm[];
  code?: string;
  /** 0-based index of the first record. */
  offset: number;
  size: number;
}

const clone = <T>(value: T): T => structuredClone(value);

function createdKeyOf(record: Raw): number {
  const ticks = typeof record.createdDate === 'string' ? parseCin7Date(record.createdDate) : Number.NaN;
  return Number.isNaN(ticks) ? Number.NEGATIVE_INFINITY : ticks;
}

/** A createdDate range that the typed-array index can answer, or undefined. */
function createdRange(conditions: readonly Condition[]) {
  let low = { key: Number.NEGATIVE_INFINITY, inclusive: true };
  let high = { key: Number.POSITIVE_INFINITY, inclusive: true };
  for (const { field, op, value } of conditions) {
    if (field !== 'createdDate' || op === '<>' || typeof value !== 'number') return undefined;
    if ((op === '>=' || op === '>' || op === '=') && (value > low.key || (value === low.key && op === '>'))) {
      low = { key: value, inclusive: op !== '>' };
    }
    if ((op === '<=' || op === '<' || op === '=') && (value < high.key || (value === high.key && op === '<'))) {
      high = { key: value, inclusive: op !== '<' };
    }
  }
  return { low, high };
}

export function createCin7Store(options: Cin7StoreOptions) {
  const { seed, count, now } = options;
  const data = createCin7Data(options);
  const byCreated = createOrderedIndex(count, data.createdKey);
  const bySeq = createOrderedIndex(count, (seq) => seq);
  const changed = new Map<number, Raw>();
  const malformedSeqs = new Set<number>();
  const hooks = createListHooks();
  const churnRandom = createRandom(hash32(seed, 26));
  let nextSeq = count;

  const recordOf = (seq: number): Raw => changed.get(seq) ?? data.generate(seq);
  const put = (seq: number, record: Raw) => {
    changed.set(seq, record);
    byCreated.set(seq, createdKeyOf(record));
    bySeq.set(seq, seq);
  };
  const allSeqs = () => {
    const view = bySeq.view();
    return view.slice(0, view.size);
  };
  const seqsOfCode = (code: string): number[] => {
    const seq = data.codes.decode(code);
    const seqs = seq !== undefined && bySeq.inBase(seq) ? [seq] : [];
    for (const s of bySeq.overlaySeqs()) if (recordOf(s).code === code) seqs.push(s);
    return seqs;
  };
  const mustSeq = (code: string) => {
    const seq = seqsOfCode(code)[0];
    if (seq === undefined) throw new Error(`no voucher ${code} in the fake Cin7`);
    return seq;
  };
  const nowDate = () => data.formatNow(Math.floor(now()), churnRandom.int(0, 9_999));

  function list(query: Cin7ListQuery): Raw[] {
    const { conditions, order, offset, size } = query;
    const range = createdRange(conditions);
    const byDate = order.length === 1 && order[0]!.field === 'createdDate';
    if (query.code === undefined && range && (byDate || (order.length === 0 && conditions.length === 0))) {
      // The sync's path: O(page + log n) on the typed-array index.
      const view = (byDate ? byCreated : bySeq).view();
      const start = range.low.key === Number.NEGATIVE_INFINITY ? 0 : view.rankOfKey(range.low.key, range.low.inclusive);
      const end =
        range.high.key === Number.POSITIVE_INFINITY ? view.size : view.rankOfKey(range.high.key, !range.high.inclusive);
      const desc = byDate && order[0]!.desc;
      const seqs = desc
        ? view.slice(Math.max(start, end - offset - size), end - offset).reverse()
        : view.slice(start + offset, Math.min(end, start + offset + size));
      return seqs.map(recordOf);
    }
    const candidates = query.code !== undefined ? seqsOfCode(query.code) : allSeqs();
    const found = candidates
      .map((seq) => ({ seq, record: recordOf(seq) }))
      .filter((m) => matches(m.record, conditions));
    found.sort((a, b) => {
      for (const { field, desc } of order) {
        const x = comparable(a.record, field);
        const y = comparable(b.record, field);
        const c = x === y ? 0 : x === null ? -1 : y === null ? 1 : x < y ? -1 : 1;
        if (c !== 0) return desc ? -c : c;
      }
      return a.seq - b.seq;
    });
    return found.slice(offset, offset + size).map((m) => m.record);
  }

  const store: Cin7Store = {
    get size() {
      return bySeq.size;
    },
    all: () =>
      allSeqs()
        .filter((seq) => !malformedSeqs.has(seq))
        .map((seq) => clone(recordOf(seq)) as Cin7Voucher),
    malformed: () => [...malformedSeqs].filter((seq) => bySeq.has(seq)).map((seq) => clone(recordOf(seq))),
    get(code) {
      const seq = seqsOfCode(code).find((s) => !malformedSeqs.has(s));
      return seq === undefined ? undefined : (clone(recordOf(seq)) as Cin7Voucher);
    },
    insert(partial = {}) {
      const seq = nextSeq++;
      const generated = data.generate(seq);
      const record: Raw = {
        ...generated,
        createdDate: nowDate(),
        status: 'Active',
        redeemedAmount: 0,
        redeemedCount: 0,
      };
      if (generated.expiryDate !== null) record.expiryDate = data.formatNow(Math.floor(now()) + 365 * 86_400_000, 0);
      put(seq, { ...record, ...clone(partial) });
      return clone(recordOf(seq)) as Cin7Voucher;
    },
    redeem(code, amount) {
      const seq = mustSeq(code);
      const record = clone(recordOf(seq));
      const total = typeof record.amount === 'number' ? record.amount : Number.NaN;
      const redeemed = round2(Number(record.redeemedAmount ?? 0) + amount);
      put(seq, {
        ...record,
        redeemedAmount: redeemed,
        redeemedCount: Number(record.redeemedCount ?? 0) + 1,
        status: statusOf(total, redeemed),
      });
      return clone(recordOf(seq)) as Cin7Voucher;
    },
    update(code, patch) {
      const seq = mustSeq(code);
      put(seq, { ...clone(recordOf(seq)), ...clone(patch) });
      return clone(recordOf(seq)) as Cin7Voucher;
    },
    hardDelete(code) {
      const seq = seqsOfCode(code)[0];
      if (seq === undefined) return false;
      byCreated.delete(seq);
      bySeq.delete(seq);
      changed.delete(seq);
      malformedSeqs.delete(seq);
      return true;
    },
    insertMalformed(kind) {
      const seq = nextSeq++;
      const record: Raw = { ...data.generate(seq), createdDate: nowDate() };
      switch (kind) {
        case 'missing-code':
          delete record.code;
          break;
        case 'zero-date':
          record.createdDate = '0000-00-00T00:00:00';
          break;
        case 'comma-number':
          record.amount = '12,50';
          break;
        case 'wrong-type':
          record.customerID = 'C-1001';
          record.redeemedCount = '1';
          break;
        case 'oversized-string':
          record.code = `OVERSIZED-${seq}-`.padEnd(300, 'X');
          record.description = 'd'.repeat(100_000);
          break;
      }
      put(seq, record);
      malformedSeqs.add(seq);
      return clone(record);
    },
    churn(changes = 1) {
      for (let i = 0; i < changes; i++) {
        const action = churnRandom.next();
        const seq = pickLive();
        if (action < 0.3 || seq === undefined) {
          store.insert();
          continue;
        }
        const record = recordOf(seq);
        const code = String(record.code);
        const balance = Number(record.amount) - Number(record.redeemedAmount);
        if (action < 0.75 && balance > 0) store.redeem(code, round2(Math.min(balance, churnRandom.pick([5, 10, 25]))));
        else if (action < 0.95) store.update(code, { description: `${String(record.type)} (edited)` });
        else store.hardDelete(code);
      }
    },
    onListRequest: (fn) => hooks.add(fn),
  };

  function pickLive(): number | undefined {
    for (let attempt = 0; attempt < 50; attempt++) {
      const seq = churnRandom.int(0, nextSeq - 1);
      if (bySeq.has(seq) && !malformedSeqs.has(seq)) return seq;
    }
    return undefined;
  }

  return { store, data, list, hooks };
}
