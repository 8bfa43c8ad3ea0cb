import { createCodeCodec, createHexIdCodec } from './id-codec.ts';
import { createRandom, hash32, type Random } from './random.ts';
import { createZoneTable, formatWall } from './zone-table.ts';

export interface CareCloudStoreInfo {
  store_id: string;
  store_code: string;
  name: string;
  partner_id: string;
  system_id: string;
  last_change: string;
  state: 0 | 1 | 2;
}

export interface CareCloudReward {
  reward_id: string;
  code: string;
  name: string;
  points_cost: number;
  reward_group: 0 | 1 | 2 | 4;
  store_list: CareCloudStoreInfo[];
  is_automated: boolean;
  last_change: string;
  state: 0 | 1 | 2;
}

/** A voucher exactly as the API serves it; fields the spec does not list may appear. */
export interface CareCloudVoucher {
  voucher_id: string;
  customer_id: string;
  store_id?: string;
  code: string;
  value: number;
  applied_date?: string;
  valid_from: string;
  valid_to: string;
  reward_group: string;
  note: string;
  reward: CareCloudReward;
  created_at: string;
  last_change: string;
  state: 0 | 1 | 2;
  [field: string]: unknown;
}

export interface CareCloudDataOptions {
  seed: number;
  count: number;
  /** The instant the generated history ends at (ms). */
  anchor: number;
  zone: string;
}

const DAY = 86_400_000;
const ALNUM = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const NAMES = ['Dessert+Caffe', 'Free espresso', '10 % off', 'Birthday cake', 'Summer sale', 'Gift 500'];
const NOTES = ['Contact before use', 'Birthday gift', 'Compensation for a late delivery', 'Valid in all stores'];
const VALUES = [50, 100, 150, 200, 250, 500, 3.49, 12.5, 99.9];
const CHANNELS = ['eshop', 'pos', 'app'];

export const isServiceCode = (code: unknown): boolean =>
  typeof code === 'string' && (code.startsWith('canceled_') || code.startsWith('initial_'));

/**
 * Everything about the generated CareCloud data that follows from (seed, count, anchor, zone): the catalog
 * of stores and rewards, and voucher `seq` rebuilt on demand. All datetimes are wall-clock readings in the
 * project zone, held as UTC milliseconds and formatted `YYYY-MM-DD HH:MM:SS`.
 */
export function createCareCloudData({ seed, count, anchor, zone }: CareCloudDataOptions) {
  const table = createZoneTable(zone, anchor - 800 * DAY, anchor + 400 * DAY);
  const gaps = table.gaps();
  const anchorWall = Math.floor(table.wallAt(anchor) / 1000) * 1000;
  const lastGap = gaps.filter(([, end]) => end <= anchorWall).at(-1);
  const lastOverlap = table
    .overlaps()
    .filter(([, end]) => end <= anchorWall)
    .at(-1);
  /** Wall times inside a spring-forward gap never happen: move them past it. */
  const existing = (wall: number) => {
    for (const [start, end] of gaps) if (wall >= start && wall < end) return wall + (end - start);
    return wall;
  };
  const seconds = (ms: number) => Math.floor(ms / 1000) * 1000;

  const hexIds = (salt: number) => createHexIdCodec(seed, salt);
  const voucherIds = hexIds(11);
  const customerIds = hexIds(12);
  const catalogIds = hexIds(13);
  const customerCount = Math.max(1, Math.floor(count / 3));

  const serviceCount = count >= 20 ? Math.min(50, Math.max(3, Math.floor(count / 200))) : 0;
  const serviceSeqs = Array.from({ length: serviceCount }, (_, k) => Math.floor(((k + 0.5) * count) / serviceCount));
  const servicePrefix = new Map(serviceSeqs.map((seq, k) => [seq, k % 2 === 0 ? 'canceled_' : 'initial_']));
  const codes = createCodeCodec(seed, 14, ALNUM, 6, (n) => {
    const noise = hash32(seed, n, 15);
    const head = [0, 6, 12].map((shift) => ALNUM[(noise >>> shift) % 62]!).join('');
    return (servicePrefix.get(n) ?? '') + head;
  });

  const catalogStamp = formatWall(seconds(anchorWall - 400 * DAY));
  const stores: CareCloudStoreInfo[] = ['Prague Old Town', 'Brno Centrum', 'Ostrava Forum', 'E-shop'].map(
    (name, k) => ({
      store_id: catalogIds.encode(1000 + k),
      store_code: `S${String(k + 1).padStart(3, '0')}`,
      name,
      partner_id: catalogIds.encode(2000),
      system_id: String(4100 + k),
      last_change: catalogStamp,
      state: 1,
    }),
  );
  const rewardGroups = [0, 1, 2, 4] as const;
  const rewards: CareCloudReward[] = NAMES.map((name, k) => ({
    reward_id: catalogIds.encode(3000 + k),
    code: `REWARD-${String(k + 1).padStart(3, '0')}`,
    name,
    points_cost: (k + 1) * 100,
    reward_group: rewardGroups[k % rewardGroups.length]!,
    store_list: [],
    is_automated: k % 3 === 0,
    last_change: catalogStamp,
    state: 1,
  }));
  const rewardStores = new Map(rewards.map((r, k) => [r.reward_id, stores.filter((_, s) => (k + s) % 3 !== 2)]));
  const rewardGroupId = (group: number) => catalogIds.encode(4000 + group);

  // A bulk import stamped every voucher with the same second: more than a page of them.
  const burstShare = count > 0 ? Math.min(0.15, 1500 / count) : 0;
  const dstShare = count > 0 ? Math.min(0.05, Math.max(0.003, 10 / count)) : 0;
  const burstWall = existing(seconds(anchorWall - 30 * DAY - (hash32(seed, 16) % 86_400) * 1000));

  const rngOf = (seq: number) => createRandom(hash32(seed, seq, 17));
  /** Must draw first from the record's generator: `generate` replays the same draws. */
  const changeWall = (rng: Random): number => {
    const u = rng.next();
    if (u < burstShare) return burstWall;
    if (u < burstShare + dstShare && lastOverlap) {
      return lastOverlap[0] + rng.int(0, (lastOverlap[1] - lastOverlap[0]) / 1000 - 1) * 1000;
    }
    if (u < burstShare + 2 * dstShare && lastGap) {
      return rng.chance(0.5) ? lastGap[0] - rng.int(1, 300) * 1000 : lastGap[1] + rng.int(0, 299) * 1000;
    }
    if (u < burstShare + 2 * dstShare + 0.08) return existing(anchorWall - rng.int(90 * 86_400, 730 * 86_400) * 1000);
    return existing(anchorWall - rng.int(3600, 90 * 86_400) * 1000);
  };

  function generate(seq: number): CareCloudVoucher {
    const rng = rngOf(seq);
    const change = changeWall(rng);
    const created = change === burstWall ? change : Math.min(change, existing(change - rng.int(0, 60 * 86_400) * 1000));
    const applied = rng.chance(0.3)
      ? Math.min(change, existing(seconds(created + rng.next() * (change - created))))
      : undefined;
    const reward = rng.pick(rewards);
    const stateDraw = rng.next();
    const voucher: CareCloudVoucher = {
      voucher_id: voucherIds.encode(seq),
      customer_id: customerIds.encode(seq % customerCount),
      store_id: rng.pick(stores).store_id,
      code: codes.encode(seq),
      value: rng.pick(VALUES),
      valid_from: formatWall(created),
      valid_to: formatWall(existing(created + rng.int(30, 365) * DAY)),
      reward_group: rewardGroupId(reward.reward_group),
      note: rng.chance(0.2) ? rng.pick(NOTES) : '',
      reward: { ...reward, store_list: [] },
      created_at: formatWall(created),
      last_change: formatWall(change),
      state: stateDraw < 0.03 ? 0 : stateDraw < 0.1 ? 2 : 1,
    };
    if (applied !== undefined) voucher.applied_date = formatWall(applied);
    // New fields may appear in the real API at any time without a version change.
    if (rng.chance(0.03)) voucher.channel = rng.pick(CHANNELS);
    return voucher;
  }

  return {
    table,
    stores,
    rewards,
    voucherIds,
    customerIds,
    codes,
    customerCount,
    serviceSeqs,
    burstWall,
    lastGap,
    lastOverlap,
    generate,
    /** Sort key of generated voucher `seq`: its last_change as wall-clock seconds. */
    changeKey: (seq: number) => changeWall(rngOf(seq)) / 1000,
    storesOf: (rewardId: unknown) => rewardStores.get(String(rewardId)),
    rewardGroupId,
    /** The project's local time at an instant, as the API writes it. */
    wallString: (ms: number) => formatWall(seconds(table.wallAt(ms))),
  };
}

export type CareCloudData = ReturnType<typeof createCareCloudData>;
