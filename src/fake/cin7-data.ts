import { formatCin7Date, ticksOf } from './cin7-dates.ts';
import { createCodeCodec } from './id-codec.ts';
import { createRandom, hash32, type Random } from './random.ts';
import { createZoneTable } from './zone-table.ts';

/** A Cin7 Omni voucher as the API serves it: camelCase keys, no id, no modified date. */
export interface Cin7Voucher {
  createdDate: string;
  /** Active = has a balance left, Inactive = fully redeemed. */
  status: 'Active' | 'Inactive';
  code: string;
  type: string;
  description: string;
  expiryDate: string | null;
  amount: number;
  customerID: number;
  customerEmail: string | null;
  redeemedCount: number;
  redeemedCountLimit: number;
  redeemedAmount: number;
  [field: string]: unknown;
}

export interface Cin7DataOptions {
  seed: number;
  count: number;
  /** The instant the generated history ends at (ms). */
  anchor: number;
  /** Zone of the offsets in dates. */
  zone: string;
}

const DAY = 86_400_000;
const TYPES = [
  { type: 'Gift Voucher', prefix: 'GV-' },
  { type: 'Credit Note', prefix: 'CN-' },
] as const;
const AMOUNTS = [10, 20, 25, 50, 75, 100, 150, 200, 12.5, 49.95];

export const round2 = (value: number) => Math.round(value * 100) / 100;
export const statusOf = (amount: number, redeemed: number): Cin7Voucher['status'] =>
  redeemed >= amount ? 'Inactive' : 'Active';

/** Everything about the generated Cin7 data that follows from (seed, count, anchor, zone). */
export function createCin7Data({ seed, count, anchor, zone }: Cin7DataOptions) {
  const table = createZoneTable(zone, anchor - 800 * DAY, anchor + 400 * DAY);
  const typeOf = (seq: number) => TYPES[hash32(seed, seq, 22) % TYPES.length]!;
  const codes = createCodeCodec(seed, 23, '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ', 7, (n) => typeOf(n).prefix);
  const customerCount = Math.max(1, Math.floor(count / 4));

  // One bulk import gave many vouchers the very same createdDate, down to the seventh digit.
  const burstShare = count > 0 ? Math.min(0.15, 1500 / count) : 0;
  const burstTicks = ticksOf(anchor - 45 * DAY - (hash32(seed, 24) % DAY), hash32(seed, 25) % 10_000);

  const rngOf = (seq: number) => createRandom(hash32(seed, seq, 21));
  /** Must draw first from the record's generator: `generate` replays the same draws. */
  const createdTicks = (rng: Random): number => {
    const u = rng.next();
    if (u < burstShare) return burstTicks;
    const ageMs = u < burstShare + 0.1 ? rng.int(365, 730) * DAY - rng.int(0, DAY - 1) : rng.int(3_600_000, 365 * DAY);
    return ticksOf(anchor - ageMs, rng.int(0, 9_999));
  };

  function generate(seq: number): Cin7Voucher {
    const rng = rngOf(seq);
    const created = createdTicks(rng);
    // A few dates come without an offset: Cin7 means UTC then.
    const zoneOfDates = rng.chance(0.01) ? undefined : table;
    const { type } = typeOf(seq);
    const amount = rng.pick(AMOUNTS);
    const redeemDraw = rng.next();
    const redeemedAmount =
      redeemDraw < 0.6 ? 0 : redeemDraw < 0.85 ? round2(amount * (0.1 + 0.8 * rng.next())) : amount;
    const redeemedCountLimit = rng.pick([0, 0, 1, 5]);
    const redeemedCount =
      redeemedAmount === 0 ? 0 : redeemedCountLimit > 0 ? Math.min(redeemedCountLimit, rng.int(1, 3)) : rng.int(1, 3);
    const customerID = rng.chance(0.8) ? 1000 + (seq % customerCount) : 0;
    const expires = rng.chance(0.7);
    return {
      createdDate: formatCin7Date(created, zoneOfDates),
      status: statusOf(amount, redeemedAmount),
      code: codes.encode(seq),
      type,
      description: `${type} ${amount.toFixed(2)}`,
      expiryDate: expires ? formatCin7Date(created + 365 * DAY * 10_000, zoneOfDates) : null,
      amount,
      customerID,
      customerEmail: customerID > 0 && rng.chance(0.9) ? `customer${customerID}@example.com` : null,
      redeemedCount,
      redeemedCountLimit,
      redeemedAmount,
    };
  }

  return {
    table,
    codes,
    burstTicks,
    generate,
    /** Sort key of generated voucher `seq`: its createdDate in ticks. */
    createdKey: (seq: number) => createdTicks(rngOf(seq)),
    formatNow: (ms: number, subMs: number) => formatCin7Date(ticksOf(ms, subMs), table),
  };
}

export type Cin7Data = ReturnType<typeof createCin7Data>;
