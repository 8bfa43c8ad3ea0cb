/** CareCloud voucher records: their mapping to a row, their key and their cursor. */
import type { MapResult, VoucherRow } from '../../types.ts';
import { parseLocalDateTime } from '../parse.ts';
import { labelOf, RecordReader } from '../record-reader.ts';

const STATES = [0, 1, 2] as const;

export function mapCareCloudVoucher(raw: unknown, zone: string): MapResult {
  const r = new RecordReader(raw);
  const state = r.oneOf('state', STATES);
  const row: VoucherRow = {
    sourceId: r.text('voucher_id', { required: true }) ?? '',
    code: r.text('code'),
    customerId: r.text('customer_id', { required: true }),
    // state: 0 deleted, 1 active, 2 non active. A record without a state is taken as active.
    status: state === 0 ? 'deleted' : state === 2 ? 'inactive' : 'active',
    amount: r.amount('value'),
    redeemedAmount: null,
    validFrom: r.localDate('valid_from', zone),
    validTo: r.localDate('valid_to', zone),
    appliedAt: r.localDate('applied_date', zone),
    sourceCreatedAt: r.localDate('created_at', zone),
    sourceModifiedAt: r.localDate('last_change', zone),
    isDeleted: state === 0,
    raw,
    storeId: r.label('store_id'),
    rewardId: labelOf(field(r.fields.reward, 'reward_id')),
    rewardName: labelOf(field(r.fields.reward, 'name')),
  };
  return r.result(row, raw);
}

const field = (record: unknown, name: string): unknown =>
  record !== null && typeof record === 'object' ? (record as Record<string, unknown>)[name] : undefined;

/** The record's key (`voucher_id`), or undefined when it has none. */
export function keyOf(record: unknown): string | undefined {
  const id = field(record, 'voucher_id');
  return typeof id === 'string' && id !== '' ? id : typeof id === 'number' ? String(id) : undefined;
}

/** The record's cursor, `last_change` read in `zone`, as epoch ms; null when it cannot be read. */
export const lastChangeCursor =
  (zone: string) =>
  (record: unknown): number | null => {
    const value = field(record, 'last_change');
    if (typeof value !== 'string') return null;
    try {
      return Date.parse(parseLocalDateTime(value, zone));
    } catch {
      return null;
    }
  };
