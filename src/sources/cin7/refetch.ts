/**
 * How `rejected replay` finds a rejected Cin7 voucher again: by its `Code`, the only key a Cin7 voucher has
 * (`GET v1/Voucher?code=`, documented; the answer may hold look-alikes, so the code is compared). A record that
 * came without a code cannot be found again.
 */
import type { RecordIdentity, StreamDefinition } from '../../types.ts';
import type { Cin7Client } from './client.ts';

/** `code` or `Code`: the API documents PascalCase and sends camelCase. */
function codeOf(raw: unknown): unknown {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return undefined;
  const fields = raw as Record<string, unknown>;
  return 'code' in fields ? fields.code : fields.Code;
}

const textOf = (value: unknown): string | undefined =>
  typeof value === 'string' && value.trim() !== '' && value.length <= 255 ? value : undefined;

export const cin7Refetch = {
  identify({ sourceId, raw }): RecordIdentity | null {
    const code = textOf(sourceId) ?? textOf(codeOf(raw));
    return code === undefined ? null : { by: 'code', value: code };
  },
  async refetch(client, { value }, call) {
    const matches = await client.findByCode(value, call);
    return matches.find((record) => codeOf(record) === value) ?? null;
  },
} satisfies Pick<StreamDefinition<Cin7Client>, 'identify' | 'refetch'>;
