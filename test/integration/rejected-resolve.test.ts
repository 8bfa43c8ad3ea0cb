/**
 * A rejection resolves by itself when a later valid version of the same record is stored by any run — in the page's
 * own statement (src/db/write-page.ts) — and opens again when the source sends the rejected payload again.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { writePage } from '../../src/db/write-page.ts';
import type { VoucherRow } from '../../src/types.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { createHarness, type Harness } from '../helpers/sync-harness.ts';

let h: Harness | undefined;
let test: TestDatabase | undefined;
afterEach(async () => {
  await h?.close();
  await test?.drop();
  h = undefined;
  test = undefined;
});

function voucher(sourceId: string, modifiedAt: string, amount: string): VoucherRow {
  return {
    sourceId,
    code: `CODE-${sourceId}`,
    customerId: 'cust-1',
    status: 'active',
    amount,
    redeemedAmount: null,
    validFrom: null,
    validTo: null,
    appliedAt: null,
    sourceCreatedAt: '2026-01-01T00:00:00.000Z',
    sourceModifiedAt: modifiedAt,
    isDeleted: false,
    raw: { voucher_id: sourceId, value: Number(amount), last_change: modifiedAt },
  };
}

describe('rejections resolved by a later valid version', () => {
  it('a sync that stores the corrected record resolves its rejection, kept, with the run that stored it', async () => {
    h = await createHarness({ careCloud: { count: 40 } });
    const harness = h;
    const broken = harness.careCloud.store.insertMalformed('comma-number');
    const other = harness.careCloud.store.insertMalformed('zero-date');
    const first = await harness.sync('carecloud');
    expect(await harness.db.rejectedRecord.count({ where: { resolvedAt: null } })).toBe(2);

    // Corrected at the source: a new last_change, so the next incremental run reads it.
    harness.careCloud.store.update(String(broken.voucher_id), { value: 12.5 });
    const second = await harness.sync('carecloud');
    expect(second.counters.inserted).toBe(1);
    const byId = async (sourceId: unknown) =>
      harness.db.rejectedRecord.findFirstOrThrow({ where: { sourceId: String(sourceId) } });
    expect(await byId(broken.voucher_id)).toMatchObject({
      resolution: 'superseded',
      resolvedByRunId: second.runId,
      resolvedAt: expect.any(Date),
      runId: first.runId,
    });
    expect(await byId(other.voucher_id)).toMatchObject({ resolution: null, resolvedAt: null });
    expect(await harness.db.rejectedRecord.count()).toBe(2);
  });

  it('an older copy resolves nothing; the same content read again does; the rejected payload sent again reopens', async () => {
    test = await createTestDatabase({ prefix: 'rejected_resolve' });
    const db = test.prisma;
    const page = (
      runId: bigint,
      rows: VoucherRow[],
      rejects: { sourceId: string; reason: string; raw: unknown }[] = [],
    ) => writePage(db, { source: 'carecloud', stream: 'vouchers', runId, rows, rejects });
    const state = async () =>
      (await db.rejectedRecord.findMany({ orderBy: { sourceId: 'asc' } })).map((r) => [
        r.sourceId,
        r.resolution,
        r.resolvedByRunId,
      ]);

    await page(1n, [voucher('A', '2026-02-01T00:00:00.000Z', '10'), voucher('B', '2026-02-01T00:00:00.000Z', '10')]);
    const bad = { voucher_id: 'A', value: '1,5' };
    await page(
      2n,
      [],
      [
        { sourceId: 'A', reason: 'value: expected a number', raw: bad },
        { sourceId: 'B', reason: 'value: expected a number', raw: { voucher_id: 'B', value: '2,5' } },
      ],
    );

    // An older version of A, skipped by newer-wins, and another key's write: both open still.
    await page(3n, [voucher('A', '2026-01-01T00:00:00.000Z', '5'), voucher('C', '2026-02-01T00:00:00.000Z', '1')]);
    expect(await state()).toEqual([
      ['A', null, null],
      ['B', null, null],
    ]);
    // A read again exactly as stored (unchanged), B in a newer version: both superseded, each by its run.
    await page(4n, [voucher('A', '2026-02-01T00:00:00.000Z', '10')]);
    await page(5n, [voucher('B', '2026-03-01T00:00:00.000Z', '20')]);
    expect(await state()).toEqual([
      ['A', 'superseded', 4n],
      ['B', 'superseded', 5n],
    ]);
    // The source sends A's rejected payload again: open again, seen twice.
    await page(6n, [], [{ sourceId: 'A', reason: 'value: expected a number', raw: bad }]);
    const [a] = await db.rejectedRecord.findMany({ where: { sourceId: 'A' } });
    expect(a).toMatchObject({ resolvedAt: null, resolution: null, resolvedByRunId: null, timesSeen: 2, runId: 6n });
  });
});
