import { createCareCloudData, isServiceCode, type CareCloudVoucher } from './carecloud-data.ts';
import type { VoucherQuery } from './carecloud-query.ts';
import { createListHooks, type ListHook } from './list-hooks.ts';
import { createOrderedIndex } from './ordered-index.ts';
import { createRandom, hash32 } from './random.ts';
import { formatWall, parseWall } from './zone-table.ts';

export type CareCloudMalformedKind =
  'missing-id' | 'zero-date' | 'nonexistent-local-time' | 'comma-number' | 'wrong-type' | 'oversized-string';

export const CARECLOUD_MALFORMED_KINDS: readonly CareCloudMalformedKind[] = [
  'missing-id',
  'zero-date',
  'nonexistent-local-time',
  'comma-number',
  'wrong-type',
  'oversized-string',
];

type Raw = Record<string, unknown>;

/** The ground truth of the fake CareCloud, readable and changeable from a test while a sync runs. */
export interface CareCloudStore {
  /** Vouchers present (soft-deleted included, hard-deleted not), malformed ones included. */
  readonly size: number;
  /** Every well-formed voucher, soft-deleted included, in insertion order. O(n): meant for tests. */
  all(): CareCloudVoucher[];
  /** The malformed records still present, as served. */
  malformed(): Raw[];
  get(voucherId: string): CareCloudVoucher | undefined;
  /** Adds a voucher created now; `partial` overrides any field. */
  insert(partial?: Partial<CareCloudVoucher>): CareCloudVoucher;
  /** Applies `patch` (default: a new note) and stamps last_change with now, unless the patch sets it. */
  update(voucherId: string, patch?: Partial<CareCloudVoucher>): CareCloudVoucher;
  /** state 0 and a new last_change: how CareCloud deletes. */
  softDelete(voucherId: string): CareCloudVoucher;
  /** The voucher vanishes; later rows shift up. False when it did not exist. */
  hardDelete(voucherId: string): boolean;
  /** Adds one malformed record (stamped now unless the date is the defect) and returns it. */
  insertMalformed(kind: CareCloudMalformedKind): Raw;
  /** Applies `changes` random updates, inserts, redemptions and soft deletes (what `churn` runs). */
  churn(changes?: number): void;
  /** The project's local time now, as the API writes it. */
  nowLocal(): string;
  /** Runs `fn` before each list request is served; returns the function that removes it. */
  onListRequest(fn: ListHook): () => void;
  /** Expires every bearer token issued so far. */
  expireTokens(): void;
}

export interface CareCloudStoreOptions {
  seed: number;
  count: number;
  anchor: number;
  zone: string;
  now: () => number;
}

const clone = <T>(value: T): T => structuredClone(value);

function compareValues(a: unknown, b: unknown): number {
  if (a === b) return 0;
  if (a === undefined || a === null) return -1;
  if (b === undefined || b === null) return 1;
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  const left = typeof a === 'string' ? a : JSON.stringify(a);
  const right = typeof b === 'string' ? b : JSON.stringify(b);
  return left < right ? -1 : left > right ? 1 : 0;
}

/** Sort key of a record: last_change as wall-clock seconds; unreadable dates sort first. */
function changeKeyOf(record: Raw): number {
  const wall = parseWall(String(record.last_change));
  return Number.isNaN(wall) ? Number.NEGATIVE_INFINITY : wall / 1000;
}

export function createCareCloudStore(options: CareCloudStoreOptions) {
  const { seed, count, now } = options;
  const data = createCareCloudData(options);
  const byChange = createOrderedIndex(count, data.changeKey);
  const bySeq = createOrderedIndex(count, (seq) => seq);
  const changed = new Map<number, Raw>();
  const malformedSeqs = new Set<number>();
  const hooks = createListHooks();
  const churnRandom = createRandom(hash32(seed, 18));
  let nextSeq = count;
  let expireTokens = () => {};

  const recordOf = (seq: number): Raw => changed.get(seq) ?? data.generate(seq);
  const put = (seq: number, record: Raw) => {
    changed.set(seq, record);
    byChange.set(seq, changeKeyOf(record));
    bySeq.set(seq, seq);
  };
  // Service vouchers leave the base so that the default listing can hide them with an overlay filter.
  for (const seq of data.serviceSeqs) {
    byChange.set(seq, data.changeKey(seq));
    bySeq.set(seq, seq);
  }

  const seqOfId = (id: string): number | undefined => {
    const seq = data.voucherIds.decode(id);
    if (seq !== undefined && bySeq.has(seq) && recordOf(seq).voucher_id === id) return seq;
    return bySeq.overlaySeqs().find((s) => recordOf(s).voucher_id === id);
  };
  const mustSeq = (id: string) => {
    const seq = seqOfId(id);
    if (seq === undefined) throw new Error(`no voucher ${id} in the fake CareCloud`);
    return seq;
  };
  const nowLocal = () => data.wallString(now());
  const allSeqs = () => {
    const view = bySeq.view();
    return view.slice(0, view.size);
  };

  /** Base vouchers of a customer are seq ≡ c (mod customerCount); moved or added ones sit in the overlay. */
  const customerSeqs = (customerId: string): number[] => {
    const c = data.customerIds.decode(customerId);
    const seqs: number[] = [];
    if (c !== undefined && c < data.customerCount) {
      for (let seq = c; seq < count; seq += data.customerCount) if (bySeq.inBase(seq)) seqs.push(seq);
    }
    for (const seq of bySeq.overlaySeqs()) if (recordOf(seq).customer_id === customerId) seqs.push(seq);
    return seqs;
  };
  const codeSeqs = (code: string): number[] => {
    const seq = data.codes.decode(code);
    const seqs = seq !== undefined && bySeq.inBase(seq) ? [seq] : [];
    for (const s of bySeq.overlaySeqs()) if (recordOf(s).code === code) seqs.push(s);
    return seqs;
  };

  function list(query: VoucherQuery, pageSize: number, customerId?: string): { records: Raw[]; total: number } {
    const customer = customerId ?? query.customerId;
    const { sortField, desc, offset } = query;
    const plain =
      customer === undefined &&
      query.code === undefined &&
      query.storeId === undefined &&
      query.isValid === undefined &&
      query.isApplied === undefined &&
      query.rewardIds === undefined &&
      (sortField === undefined || sortField === 'last_change');
    if (plain) {
      // The sync's path: O(page + log n) on the typed-array index.
      const index = sortField === 'last_change' ? byChange : bySeq;
      const view = index.view(query.includeService ? undefined : (seq) => !isServiceCode(recordOf(seq).code));
      const total = view.size;
      const seqs = desc
        ? view.slice(total - offset - pageSize, total - offset).reverse()
        : view.slice(offset, offset + pageSize);
      return { records: seqs.map(recordOf), total };
    }
    const nowWall = nowLocal();
    const keep = (r: Raw) =>
      (query.includeService || !isServiceCode(r.code)) &&
      (customer === undefined || r.customer_id === customer) &&
      (query.code === undefined || r.code === query.code) &&
      (query.storeId === undefined ||
        (data.storesOf((r.reward as Raw | undefined)?.reward_id) ?? []).some((s) => s.store_id === query.storeId)) &&
      (query.isApplied === undefined ||
        (typeof r.applied_date === 'string' && r.applied_date !== '') === query.isApplied) &&
      (query.isValid === undefined ||
        (String(r.valid_from) <= nowWall && nowWall <= String(r.valid_to)) === query.isValid) &&
      (query.rewardIds === undefined || query.rewardIds.includes(String((r.reward as Raw | undefined)?.reward_id)));
    const candidates =
      customer !== undefined ? customerSeqs(customer) : query.code !== undefined ? codeSeqs(query.code) : allSeqs();
    const matches = candidates.map((seq) => ({ seq, record: recordOf(seq) })).filter((m) => keep(m.record));
    const field = sortField ?? '';
    const sortValue = (r: Raw) => (field === 'last_change' ? changeKeyOf(r) : r[field]);
    matches.sort((a, b) => {
      const order = (field ? compareValues(sortValue(a.record), sortValue(b.record)) : 0) || a.seq - b.seq;
      return desc ? -order : order;
    });
    return { records: matches.slice(offset, offset + pageSize).map((m) => m.record), total: matches.length };
  }

  const store: CareCloudStore = {
    get size() {
      return bySeq.size;
    },
    all: () =>
      allSeqs()
        .filter((seq) => !malformedSeqs.has(seq))
        .map((seq) => clone(recordOf(seq)) as CareCloudVoucher),
    malformed: () => [...malformedSeqs].filter((seq) => bySeq.has(seq)).map((seq) => clone(recordOf(seq))),
    get(voucherId) {
      const seq = seqOfId(voucherId);
      return seq === undefined || malformedSeqs.has(seq) ? undefined : (clone(recordOf(seq)) as CareCloudVoucher);
    },
    insert(partial = {}) {
      const seq = nextSeq++;
      const stamp = nowLocal();
      const record: Raw = {
        ...data.generate(seq),
        created_at: stamp,
        last_change: stamp,
        valid_from: stamp,
        valid_to: data.wallString(now() + 365 * 86_400_000),
        state: 1,
      };
      delete record.applied_date;
      put(seq, { ...record, ...clone(partial) });
      return clone(recordOf(seq)) as CareCloudVoucher;
    },
    update(voucherId, patch) {
      const seq = mustSeq(voucherId);
      const change = patch ?? { note: `Changed at ${nowLocal()}` };
      put(seq, { ...clone(recordOf(seq)), ...clone(change), last_change: change.last_change ?? nowLocal() });
      return clone(recordOf(seq)) as CareCloudVoucher;
    },
    softDelete: (voucherId) => store.update(voucherId, { state: 0 }),
    hardDelete(voucherId) {
      const seq = seqOfId(voucherId);
      if (seq === undefined) return false;
      byChange.delete(seq);
      bySeq.delete(seq);
      changed.delete(seq);
      malformedSeqs.delete(seq);
      return true;
    },
    insertMalformed(kind) {
      const seq = nextSeq++;
      const stamp = nowLocal();
      const record: Raw = { ...data.generate(seq), created_at: stamp, last_change: stamp };
      delete record.applied_date;
      switch (kind) {
        case 'missing-id':
          delete record.voucher_id;
          break;
        case 'zero-date':
          record.last_change = '0000-00-00 00:00:00';
          record.valid_to = '0000-00-00 00:00:00';
          break;
        case 'nonexistent-local-time': {
          if (!data.lastGap) throw new Error(`time zone ${options.zone} has no daylight-saving gap`);
          record.last_change = formatWall(data.lastGap[0] + (data.lastGap[1] - data.lastGap[0]) / 2);
          break;
        }
        case 'comma-number':
          record.value = '12,50';
          break;
        case 'wrong-type':
          record.customer_id = 4711;
          record.state = 'active';
          break;
        case 'oversized-string':
          record.code = `OVERSIZED-${seq}-`.padEnd(300, 'X');
          record.note = 'n'.repeat(100_000);
          break;
      }
      put(seq, record);
      malformedSeqs.add(seq);
      return clone(record);
    },
    churn(changes = 1) {
      for (let i = 0; i < changes; i++) {
        const action = churnRandom.next();
        if (action < 0.25 || bySeq.size === 0) {
          store.insert();
          continue;
        }
        const seq = pickLive();
        if (seq === undefined) continue;
        const id = String(recordOf(seq).voucher_id);
        if (action < 0.65)
          store.update(id, { note: `Changed at ${nowLocal()}`, value: churnRandom.pick([50, 100, 250]) });
        else if (action < 0.85) store.update(id, { applied_date: nowLocal() });
        else store.softDelete(id);
      }
    },
    nowLocal,
    onListRequest: (fn) => hooks.add(fn),
    expireTokens: () => expireTokens(),
  };

  function pickLive(): number | undefined {
    for (let attempt = 0; attempt < 50; attempt++) {
      const seq = churnRandom.int(0, nextSeq - 1);
      if (bySeq.has(seq) && !malformedSeqs.has(seq)) return seq;
    }
    return undefined;
  }

  return {
    store,
    data,
    list,
    hooks,
    /** The record as served (malformed ones included), or undefined. */
    find: (voucherId: string) => {
      const seq = seqOfId(voucherId);
      return seq === undefined ? undefined : recordOf(seq);
    },
    customerExists: (customerId: string) =>
      (data.customerIds.decode(customerId) ?? Number.POSITIVE_INFINITY) < data.customerCount ||
      bySeq.overlaySeqs().some((seq) => recordOf(seq).customer_id === customerId),
    setTokenExpirer(fn: () => void) {
      expireTokens = fn;
    },
  };
}
