import { parseCin7Date } from './cin7-dates.ts';

/**
 * The `where`, `order` and `fields` parameters of the fake Cin7, parsed with a small safe grammar:
 *   where := condition (AND condition)*      condition := Field op value
 *   op := = | <> | < | <= | > | >=           value := 'text' ('' escapes a quote) | number
 *   order := Field [ASC|DESC] (, Field [ASC|DESC])*
 * Keywords and field names are case-insensitive. Anything else is a 400, like a SQL error upstream.
 */

type FieldType = 'date' | 'number' | 'text';

export const CIN7_FIELDS: Record<string, FieldType> = {
  createdDate: 'date',
  status: 'text',
  code: 'text',
  type: 'text',
  description: 'text',
  expiryDate: 'date',
  amount: 'number',
  customerID: 'number',
  customerEmail: 'text',
  redeemedCount: 'number',
  redeemedCountLimit: 'number',
  redeemedAmount: 'number',
};

const BY_LOWER = new Map(Object.keys(CIN7_FIELDS).map((key) => [key.toLowerCase(), key]));

/** The JSON key of a field name in any case, or undefined. */
export const fieldKey = (name: string) => BY_LOWER.get(name.toLowerCase());

export type Operator = '=' | '<>' | '<' | '<=' | '>' | '>=';

/** Date values are held as ticks, text lower-cased (comparisons ignore case, like SQL Server's collation). */
export interface Condition {
  field: string;
  op: Operator;
  value: number | string;
}

export interface OrderTerm {
  field: string;
  desc: boolean;
}

type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

const TOKEN = /\s*(?:(<>|<=|>=|=|<|>)|'((?:[^']|'')*)'|(-?\d+(?:\.\d+)?)(?![\w.])|([A-Za-z_]\w*))/y;

export function parseWhere(text: string): Parsed<Condition[]> {
  const tokens: Array<{ kind: 'op' | 'text' | 'number' | 'word'; value: string }> = [];
  TOKEN.lastIndex = 0;
  let position = 0;
  while (position < text.length) {
    if (text.slice(position).trim() === '') break;
    TOKEN.lastIndex = position;
    const match = TOKEN.exec(text);
    if (!match) return { ok: false, message: `Invalid where clause near "${text.slice(position, position + 20)}"` };
    position = TOKEN.lastIndex;
    if (match[1] !== undefined) tokens.push({ kind: 'op', value: match[1] });
    else if (match[2] !== undefined) tokens.push({ kind: 'text', value: match[2].replaceAll("''", "'") });
    else if (match[3] !== undefined) tokens.push({ kind: 'number', value: match[3] });
    else tokens.push({ kind: 'word', value: match[4]! });
  }
  const conditions: Condition[] = [];
  for (let i = 0; i < tokens.length; i += 4) {
    const [name, op, value, joiner] = [tokens[i], tokens[i + 1], tokens[i + 2], tokens[i + 3]];
    if (name?.kind !== 'word' || op?.kind !== 'op' || !value || (value.kind !== 'text' && value.kind !== 'number')) {
      return { ok: false, message: 'Invalid where clause: expected Field operator value' };
    }
    if (joiner && (joiner.kind !== 'word' || joiner.value.toUpperCase() !== 'AND' || i + 4 >= tokens.length)) {
      return { ok: false, message: `Invalid where clause: expected AND between conditions, got "${joiner.value}"` };
    }
    const field = fieldKey(name.value);
    if (!field) return { ok: false, message: `Invalid where clause: unknown field "${name.value}"` };
    const type = CIN7_FIELDS[field]!;
    if (type === 'number') {
      if (value.kind !== 'number') return { ok: false, message: `Invalid where clause: ${field} needs a number` };
      conditions.push({ field, op: op.value as Operator, value: Number(value.value) });
    } else if (value.kind !== 'text') {
      return { ok: false, message: `Invalid where clause: ${field} needs a quoted value` };
    } else if (type === 'date') {
      const ticks = parseCin7Date(value.value);
      if (!Number.isFinite(ticks))
        return { ok: false, message: `Invalid where clause: "${value.value}" is not a date` };
      conditions.push({ field, op: op.value as Operator, value: ticks });
    } else {
      conditions.push({ field, op: op.value as Operator, value: value.value.toLowerCase() });
    }
  }
  return { ok: true, value: conditions };
}

export function parseOrder(text: string): Parsed<OrderTerm[]> {
  if (text.trim() === '') return { ok: true, value: [] };
  const terms: OrderTerm[] = [];
  for (const part of text.split(',')) {
    const match = /^\s*([A-Za-z_]\w*)(?:\s+(ASC|DESC))?\s*$/i.exec(part);
    const field = match && fieldKey(match[1]!);
    if (!field) return { ok: false, message: `Invalid order clause "${part.trim()}"` };
    terms.push({ field, desc: match[2]?.toUpperCase() === 'DESC' });
  }
  return { ok: true, value: terms };
}

export function parseFields(text: string): Parsed<string[] | undefined> {
  if (text.trim() === '') return { ok: true, value: undefined };
  const keys: string[] = [];
  for (const name of text.split(',')) {
    const key = fieldKey(name.trim());
    if (!key) return { ok: false, message: `Invalid fields: unknown field "${name.trim()}"` };
    keys.push(key);
  }
  return { ok: true, value: keys };
}

/** A record's comparable value of a field: ticks for dates, numbers, lower-cased text; null when unusable. */
export function comparable(record: Record<string, unknown>, field: string): number | string | null {
  const value = record[field];
  switch (CIN7_FIELDS[field]) {
    case 'date': {
      const ticks = typeof value === 'string' ? parseCin7Date(value) : Number.NaN;
      return Number.isNaN(ticks) ? null : ticks;
    }
    case 'number':
      return typeof value === 'number' ? value : null;
    default:
      return typeof value === 'string' ? value.toLowerCase() : null;
  }
}

/** SQL semantics: a null never matches. */
export function matches(record: Record<string, unknown>, conditions: readonly Condition[]): boolean {
  return conditions.every(({ field, op, value }) => {
    const actual = comparable(record, field);
    if (actual === null || typeof actual !== typeof value) return false;
    switch (op) {
      case '=':
        return actual === value;
      case '<>':
        return actual !== value;
      case '<':
        return actual < value;
      case '<=':
        return actual <= value;
      case '>':
        return actual > value;
      case '>=':
        return actual >= value;
    }
  });
}
