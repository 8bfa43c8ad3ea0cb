/**
 * How `rejected replay` finds a rejected CareCloud voucher again: by its `voucher_id` (`GET /vouchers/{id}`), or,
 * for a record that came without one, by its `code` (`GET /vouchers?code=`, the list's documented filter).
 */
import type { RecordIdentity, StreamDefinition } from '../../types.ts';
import type { CareCloudClient } from './client.ts';

const field = (raw: unknown, name: string): unknown =>
  raw !== null && typeof raw === 'object' && !Array.isArray(raw) ? (raw as Record<string, unknown>)[name] : undefined;

/** A non-empty text (a number as its digits) that fits the column it would be looked up by, else undefined. */
function textOf(value: unknown): string | undefined {
  const text = typeof value === 'number' && Number.isSafeInteger(value) ? String(value) : value;
  return typeof text === 'string' && text.trim() !== '' && text.length <= 255 ? text : undefined;
}

export const careCloudRefetch = {
  identify({ sourceId, raw }): RecordIdentity | null {
    const id = textOf(sourceId) ?? textOf(field(raw, 'voucher_id'));
    if (id !== undefined) return { by: 'id', value: id };
    const code = textOf(field(raw, 'code'));
    return code === undefined ? null : { by: 'code', value: code };
  },
  async refetch(client, { by, value }, call) {
    if (by === 'id') return client.getVoucher(value, call);
    // Codes are unique in a project; a filter that matched more than the code asked for is not trusted.
    const page = await client.listVouchers({ count: 10, offset: 0, code: value }, call);
    return page.vouchers.find((record) => field(record, 'code') === value) ?? null;
  },
} satisfies Pick<StreamDefinition<CareCloudClient>, 'identify' | 'refetch'>;
