/**
 * Hostile behaviours that poison records: the server answers as usual, but chosen vouchers come back with
 * something PostgreSQL or JSON.stringify cannot take (a lone UTF-16 surrogate in a value or a key, a note
 * nested 10,000 levels deep) or with a time from the future. For test/integration/hostile-records.test.ts.
 */
import type { Behaviour, Upstream } from './hostile-server.ts';

export type Poison = 'surrogate-value' | 'surrogate-key' | 'surrogate-id' | 'deep-note' | 'future-change';

/** How a source's record names itself (CareCloud voucher_id, Cin7 code or Code); undefined for anything else. */
export type KeyOf = (value: Record<string, unknown>) => string | undefined;

export const carecloudKey: KeyOf = (record) => (typeof record.voucher_id === 'string' ? record.voucher_id : undefined);

export const cin7Key: KeyOf = (record) => {
  const code = record.code ?? record.Code;
  return typeof code === 'string' ? code : undefined;
};

/** Every object in an answer that names itself by `keyOf`: list pages and single-record look-ups alike. */
function recordsIn(json: unknown, keyOf: KeyOf): Record<string, unknown>[] {
  const found: Record<string, unknown>[] = [];
  const stack = [json];
  while (stack.length > 0) {
    const value = stack.pop();
    if (value === null || typeof value !== 'object') continue;
    if (Array.isArray(value)) stack.push(...(value as unknown[]));
    else if (keyOf(value as Record<string, unknown>) !== undefined) found.push(value as Record<string, unknown>);
    else stack.push(...Object.values(value));
  }
  return found;
}

// JSON.stringify cannot write 10,000 levels (it recurses), so the note is a placeholder swapped for text.
const DEEP_PLACEHOLDER = '__hostile_deep_note__';
const DEEP_LEVELS = 10_000;
const deepText = () => `${'{"n":'.repeat(DEEP_LEVELS)}"bottom"${'}'.repeat(DEEP_LEVELS)}`;

function poison(record: Record<string, unknown>, kind: Poison): void {
  switch (kind) {
    case 'surrogate-value':
      record.note = 'a\ud800b';
      break;
    case 'surrogate-key':
      record.extra = { details: { ['key\udc00']: 'x' } };
      break;
    case 'surrogate-id':
      // The key itself: it reaches the row, scan_seen and the scan's saved anchors.
      record.voucher_id = `${String(record.voucher_id)}\ud800`;
      break;
    case 'deep-note':
      record.note = DEEP_PLACEHOLDER;
      break;
    case 'future-change':
      record.last_change = '2099-01-01 00:00:00';
      break;
  }
}

/**
 * Answers every request as the fake does, with the records whose key is in `poisons` poisoned wherever they
 * appear (list pages and look-ups by id or code). `served` collects the key of every record served.
 */
export function poisonRecords(keyOf: KeyOf, poisons: Map<string, Poison>, served = new Set<string>()): Behaviour {
  return async ({ forward }) => {
    const answer = await forward();
    const records = recordsIn(answer.json, keyOf);
    if (records.length === 0) return answer;
    let deep = false;
    for (const record of records) {
      const key = keyOf(record)!;
      served.add(key);
      const kind = poisons.get(key);
      if (kind) poison(record, kind);
      deep ||= kind === 'deep-note';
    }
    let text = JSON.stringify(answer.json);
    if (deep) text = text.replaceAll(`"${DEEP_PLACEHOLDER}"`, deepText());
    const body = Buffer.from(text);
    return {
      ...answer,
      body,
      headers: { ...answer.headers, 'content-type': 'application/json; charset=utf-8' },
    } satisfies Upstream;
  };
}
