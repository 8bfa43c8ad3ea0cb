/** One entry of a CareCloud 400 body's `error.error_data.invalid_params`. */
export interface InvalidParam {
  name: string;
  reason: 'not_allowed_value' | 'invalid_value_format' | 'required' | 'empty';
  value: string;
  message: string;
}

/** The parameters of `GET /vouchers` and `GET /customers/{id}/vouchers`, validated. */
export interface VoucherQuery {
  count: number;
  offset: number;
  /** Undefined: the internal insertion order. */
  sortField: string | undefined;
  desc: boolean;
  customerId?: string;
  code?: string;
  storeId?: string;
  isValid?: boolean;
  isApplied?: boolean;
  rewardIds?: string[];
  withoutStores: boolean;
  includeService: boolean;
}

/** First-level voucher fields that can be sorted on ("any first-level field" of the spec, objects aside). */
export const SORT_FIELDS: readonly string[] = [
  'voucher_id',
  'customer_id',
  'store_id',
  'code',
  'value',
  'applied_date',
  'valid_from',
  'valid_to',
  'reward_group',
  'note',
  'created_at',
  'last_change',
  'state',
];

const BOOLEANS: Record<string, boolean> = { true: true, false: false, '1': true, '0': false };

export function parseVoucherQuery(
  params: URLSearchParams,
  maxCount: number,
): { ok: true; query: VoucherQuery } | { ok: false; invalid: InvalidParam[] } {
  const invalid: InvalidParam[] = [];
  const reject = (name: string, reason: InvalidParam['reason'], value: string, message: string) => {
    invalid.push({ name, reason, value, message });
  };
  const integer = (name: string, fallback: number, min: number, max: number) => {
    const text = params.get(name);
    if (text === null) return fallback;
    if (!/^\d+$/.test(text)) {
      reject(name, 'invalid_value_format', text, `${name} must be a whole number`);
      return fallback;
    }
    const value = Number(text);
    if (value < min || value > max) reject(name, 'not_allowed_value', text, `${name} must be from ${min} to ${max}`);
    return value;
  };
  const boolean = (name: string) => {
    const text = params.get(name);
    if (text === null || text === '') return undefined;
    const value = BOOLEANS[text];
    if (value === undefined) reject(name, 'invalid_value_format', text, `${name} must be true or false`);
    return value;
  };
  const text = (name: string) => {
    const value = params.get(name);
    return value === null || value === '' ? undefined : value;
  };

  const count = integer('count', 100, 1, maxCount);
  const offset = integer('offset', 0, 0, Number.MAX_SAFE_INTEGER);
  const sortField = text('sort_field');
  if (sortField !== undefined && !SORT_FIELDS.includes(sortField)) {
    reject('sort_field', 'not_allowed_value', sortField, `sort_field must be one of ${SORT_FIELDS.join(', ')}`);
  }
  const direction = params.get('sort_direction') ?? 'ASC';
  if (direction !== 'ASC' && direction !== 'DESC') {
    reject('sort_direction', 'not_allowed_value', direction, 'sort_direction must be ASC or DESC');
  }
  const rewardIds = [...params.getAll('reward_id[]'), ...params.getAll('reward_id')].filter((id) => id !== '');
  const query: VoucherQuery = {
    count,
    offset,
    sortField,
    desc: direction === 'DESC',
    customerId: text('customer_id'),
    code: text('code'),
    storeId: text('store_id'),
    isValid: boolean('is_valid'),
    isApplied: boolean('is_applied'),
    rewardIds: rewardIds.length > 0 ? rewardIds : undefined,
    withoutStores: boolean('without_stores') ?? true,
    includeService: boolean('include_service_vouchers') ?? false,
  };
  return invalid.length > 0 ? { ok: false, invalid } : { ok: true, query };
}
