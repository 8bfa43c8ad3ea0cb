import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { clearScan, listUnseen, markVanished } from '../../src/db/vanished.ts';
import { writePage, type WritePageInput } from '../../src/db/write-page.ts';
import type { RejectedRow, VoucherRow } from '../../src/types.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase({ prefix: 'write_page' });
});

afterAll(async () => {
  await db?.drop();
});

beforeEach(async () => {
  await db.prisma.$executeRawUnsafe('TRUNCATE vouchers, rejected_records, scan_seen');
});

function voucher(sourceId: string, overrides: Partial<VoucherRow> = {}): VoucherRow {
  const row: VoucherRow = {
    sourceId,
    code: `CODE-${sourceId}`,
    customerId: 'cust-1',
    status: 'active',
    amount: '100.0000',
    redeemedAmount: null,
    validFrom: '2026-01-01T00:00:00.000Z',
    validTo: '2026-12-31T23:59:59.000Z',
    appliedAt: null,
    sourceCreatedAt: '2025-12-01T10:00:00.000Z',
    sourceModifiedAt: '2026-01-02T10:00:00.000Z',
    isDeleted: false,
    raw: null,
    ...overrides,
  };
  // The raw record follows the row, as a mapping would produce it.
  if (overrides.raw === undefined) row.raw = { voucher_id: sourceId, value: row.amount, state: row.status, last_change: row.sourceModifiedAt };
  return row;
}

const write = (rows: VoucherRow[], extra: Partial<WritePageInput> = {}) =>
  writePage(db.prisma, { source: 'carecloud', stream: 'vouchers', runId: 1n, rows, rejects: [], ...extra });

interface StoredRow {
  source_id: string;
  status: string;
  amount: string | null;
  redeemed_amount: string | null;
  is_deleted: boolean;
  deleted_at: Date | null;
  last_synced_at: Date;
  first_seen_at: Date;
  last_run_id: string | null;
  source_modified_at: Date | null;
  raw: Record<string, unknown>;
  version: string;
}

async function stored(sourceId: string, source = 'carecloud'): Promise<StoredRow | undefined> {
  const rows = await db.prisma.$queryRawUnsafe<StoredRow[]>(
    `SELECT source_id, status, amount::text, redeemed_amount::text, is_deleted, deleted_at, last_synced_at, first_seen_at,
            last_run_id::text, source_modified_at, raw, xmin::text AS version
       FROM vouchers WHERE source = $1 AND source_id = $2`,
    source,
    sourceId,
  );
  return rows[0];
}

const LONG_AGO = new Date('2000-01-01T00:00:00.000Z');

/** Moves a row's bookkeeping times to a fixed past instant, so that any rewrite would show. */
async function age(sourceId: string): Promise<void> {
  await db.prisma.$executeRawUnsafe(
    `UPDATE vouchers SET last_synced_at = $1::timestamptz, first_seen_at = $1::timestamptz,
            deleted_at = CASE WHEN is_deleted THEN $1::timestamptz END WHERE source_id = $2`,
    LONG_AGO.toISOString(),
    sourceId,
  );
}

describe('writePage', () => {
  it('inserts new vouchers with their values, run and hash', async () => {
    const result = await write([voucher('a'), voucher('b', { amount: '12.3456', redeemedAmount: '0.0001' })], { runId: 7n });
    expect(result).toEqual({ inserted: 2, updated: 0, unchanged: 0, rejected: 0 });
    const b = await stored('b');
    expect(b).toMatchObject({ status: 'active', amount: '12.3456', redeemed_amount: '0.0001', is_deleted: false, deleted_at: null, last_run_id: '7' });
    expect(b?.raw).toEqual({ voucher_id: 'b', value: '12.3456', state: 'active', last_change: '2026-01-02T10:00:00.000Z' });
    const [hash] = await db.prisma.$queryRawUnsafe<{ ok: boolean }[]>(
      `SELECT content_hash = sha256(convert_to(raw::text, 'UTF8')) AS ok FROM vouchers WHERE source_id = 'b'`,
    );
    expect(hash?.ok).toBe(true);
  });

  it('leaves an unchanged voucher untouched: no rewrite, last_synced_at and run kept', async () => {
    await write([voucher('a')]);
    await age('a');
    const before = await stored('a');
    // Same content, keys in another order: jsonb's canonical text makes it the same hash.
    const reordered = voucher('a');
    reordered.raw = Object.fromEntries(Object.entries(reordered.raw as object).reverse());
    const result = await write([reordered], { runId: 2n });
    expect(result).toEqual({ inserted: 0, updated: 0, unchanged: 1, rejected: 0 });
    const after = await stored('a');
    expect(after?.version).toBe(before?.version);
    expect(after?.last_synced_at).toEqual(LONG_AGO);
    expect(after?.last_run_id).toBe('1');
  });

  it('updates a voucher whose content changed, keeping first_seen_at', async () => {
    await write([voucher('a')]);
    await age('a');
    const changed = voucher('a', { amount: '80.5000', status: 'inactive', sourceModifiedAt: '2026-02-01T00:00:00.000Z' });
    expect(await write([changed], { runId: 3n })).toEqual({ inserted: 0, updated: 1, unchanged: 0, rejected: 0 });
    const row = await stored('a');
    expect(row).toMatchObject({ amount: '80.5000', status: 'inactive', last_run_id: '3', first_seen_at: LONG_AGO });
    expect(row!.last_synced_at.getTime()).toBeGreaterThan(LONG_AGO.getTime());
  });

  it('never lets an older read overwrite a newer stored voucher', async () => {
    await write([voucher('a', { amount: '50.0000', sourceModifiedAt: '2026-03-01T00:00:00.000Z' })]);
    const stale = voucher('a', { amount: '99.0000', sourceModifiedAt: '2026-02-01T00:00:00.000Z' });
    expect(await write([stale], { runId: 2n })).toEqual({ inserted: 0, updated: 0, unchanged: 1, rejected: 0 });
    expect(await stored('a')).toMatchObject({ amount: '50.0000', last_run_id: '1' });
    const newer = voucher('a', { amount: '10.0000', sourceModifiedAt: '2026-04-01T00:00:00.000Z' });
    expect(await write([newer], { runId: 3n })).toMatchObject({ updated: 1 });
    expect(await stored('a')).toMatchObject({ amount: '10.0000', last_run_id: '3' });
  });

  it('lets the fresh read win when there is no modification time (Cin7)', async () => {
    const cin7 = (amount: string) => voucher('GIFT-1', { sourceModifiedAt: null, amount, raw: { code: 'GIFT-1', amount } });
    await write([cin7('25.0000')], { source: 'cin7' });
    expect(await write([cin7('5.0000')], { source: 'cin7', runId: 2n })).toMatchObject({ updated: 1 });
    expect(await stored('GIFT-1', 'cin7')).toMatchObject({ amount: '5.0000', source_modified_at: null });
  });

  it('keeps the newest of duplicate keys in one page, else the later one', async () => {
    const page = [
      voucher('a', { amount: '3.0000', sourceModifiedAt: '2026-03-01T00:00:00.000Z' }),
      voucher('a', { amount: '1.0000', sourceModifiedAt: '2026-01-01T00:00:00.000Z' }),
      voucher('b', { amount: '1.0000', sourceModifiedAt: '2026-01-01T00:00:00.000Z' }),
      voucher('b', { amount: '2.0000', sourceModifiedAt: '2026-01-01T00:00:00.000Z' }),
      voucher('c', { amount: '1.0000', sourceModifiedAt: null }),
      voucher('c', { amount: '2.0000', sourceModifiedAt: null }),
    ];
    expect(await write(page)).toEqual({ inserted: 3, updated: 0, unchanged: 3, rejected: 0 });
    expect((await stored('a'))?.amount).toBe('3.0000');
    expect((await stored('b'))?.amount).toBe('2.0000');
    expect((await stored('c'))?.amount).toBe('2.0000');
  });

  it('soft-deletes, keeps the first deletion time, and restores a voucher that comes back', async () => {
    await write([voucher('a')]);
    const deleted = voucher('a', { status: 'deleted', isDeleted: true, sourceModifiedAt: '2026-02-01T00:00:00.000Z' });
    expect(await write([deleted], { runId: 2n })).toMatchObject({ updated: 1 });
    expect(await stored('a')).toMatchObject({ is_deleted: true, status: 'deleted', last_run_id: '2' });
    expect((await stored('a'))?.deleted_at).toBeInstanceOf(Date);

    await age('a');
    const editedWhileDeleted = { ...deleted, sourceModifiedAt: '2026-02-02T00:00:00.000Z', raw: { voucher_id: 'a', note: 'x' } };
    expect(await write([editedWhileDeleted], { runId: 3n })).toMatchObject({ updated: 1 });
    expect(await stored('a')).toMatchObject({ is_deleted: true, deleted_at: LONG_AGO, last_run_id: '3' });

    const back = voucher('a', { sourceModifiedAt: '2026-03-01T00:00:00.000Z' });
    expect(await write([back], { runId: 4n })).toMatchObject({ updated: 1 });
    expect(await stored('a')).toMatchObject({ is_deleted: false, deleted_at: null, status: 'active', last_run_id: '4' });
  });

  it('stores amounts exactly, up to the 14 integer digits of numeric(18,4)', async () => {
    const amounts = ['12.3456', '99999999999999.9999', '-0.0001', '0.1', '1234567.89'];
    await write(amounts.map((amount, i) => voucher(`n${i}`, { amount })));
    const rows = await db.prisma.voucher.findMany({ where: { sourceId: { startsWith: 'n' } }, orderBy: { sourceId: 'asc' } });
    expect(rows.map((r) => r.amount?.toFixed(4))).toEqual(['12.3456', '99999999999999.9999', '-0.0001', '0.1000', '1234567.8900']);
  });

  it('sets aside a row PostgreSQL would refuse, instead of failing the page', async () => {
    const page = [
      voucher('ok'),
      voucher('huge', { amount: '123456789012345.5' }),
      voucher('carry', { redeemedAmount: '99999999999999.99995' }),
      voucher('words', { amount: '12,50' }),
      voucher('no-zone', { validTo: '2026-12-31T23:59:59' }),
      voucher('feb30', { validFrom: '2026-02-30T00:00:00Z' }),
      voucher('nul', { raw: { voucher_id: 'nul', note: 'a\u0000b' } }),
    ];
    expect(await write(page)).toEqual({ inserted: 1, updated: 0, unchanged: 0, rejected: 6 });
    const rejects = await db.prisma.rejectedRecord.findMany({ orderBy: { sourceId: 'asc' } });
    expect(rejects.map((r) => [r.sourceId, r.reason])).toEqual([
      ['carry', expect.stringContaining('redeemedAmount')],
      ['feb30', expect.stringContaining('validFrom')],
      ['huge', expect.stringContaining('numeric(18,4)')],
      ['no-zone', expect.stringContaining('validTo')],
      ['nul', expect.stringContaining('NUL')],
      ['words', expect.stringContaining('amount')],
    ]);
    expect(await db.prisma.voucher.count()).toBe(1);
  });

  it('stores rejects once per distinct payload and counts how often each was seen', async () => {
    const bad = (reason: string, raw: unknown, sourceId: string | null = null): RejectedRow => ({ sourceId, reason, raw });
    const rejects = [
      bad('customer_id is missing', { voucher_id: '1', value: 5 }, '1'),
      bad('customer_id is missing', { value: 5, voucher_id: '1' }, '1'),
      bad('created_at is 0000-00-00', { voucher_id: '2', created_at: '0000-00-00 00:00:00' }, '2'),
      bad('not an object', 'garbage'),
    ];
    expect(await write([], { rejects, runId: 5n })).toEqual({ inserted: 0, updated: 0, unchanged: 0, rejected: 4 });
    const again = [bad('customer_id is still missing', { voucher_id: '1', value: 5 }, '1'), bad('customer_id is still missing', { value: 5, voucher_id: '1' }, '1')];
    expect(await write([], { rejects: again, runId: 6n })).toMatchObject({ rejected: 2 });
    const rows = await db.prisma.rejectedRecord.findMany({ orderBy: { sourceId: 'asc' } });
    expect(rows.map((r) => ({ sourceId: r.sourceId, reason: r.reason, timesSeen: r.timesSeen, runId: r.runId, raw: r.raw }))).toEqual([
      { sourceId: '1', reason: 'customer_id is still missing', timesSeen: 4, runId: 6n, raw: { voucher_id: '1', value: 5 } },
      { sourceId: '2', reason: 'created_at is 0000-00-00', timesSeen: 1, runId: 5n, raw: { voucher_id: '2', created_at: '0000-00-00 00:00:00' } },
      { sourceId: null, reason: 'not an object', timesSeen: 1, runId: 5n, raw: 'garbage' },
    ]);
    expect(rows[0]!.lastRejectedAt.getTime()).toBeGreaterThanOrEqual(rows[0]!.firstRejectedAt.getTime());
  });

  it('writes nothing when its transaction rolls back', async () => {
    await expect(
      db.prisma.$transaction(async (tx) => {
        await writePage(tx, { source: 'carecloud', stream: 'vouchers', runId: 1n, rows: [voucher('a')], rejects: [], scanId: 9n });
        throw new Error('checkpoint failed');
      }),
    ).rejects.toThrow('checkpoint failed');
    expect(await db.prisma.voucher.count()).toBe(0);
    expect(await db.prisma.scanSeen.count()).toBe(0);
  });
});

describe('reconciliation: scan_seen, listUnseen, markVanished, clearScan', () => {
  const scanStartedAt = new Date('2021-01-01T00:00:00.000Z');

  beforeEach(async () => {
    await write(['a', 'b', 'c', 'd', 'gone'].map((id) => voucher(id)));
    await write([voucher('a')], { source: 'cin7' });
    await markVanished(db.prisma, { source: 'carecloud', sourceIds: ['gone'], runId: 1n });
    // Everything so far was stored before the scan began...
    await db.prisma.$executeRawUnsafe(`UPDATE vouchers SET first_seen_at = '2020-01-01T00:00:00Z'`);
    // ...except this one, created while the scan ran: its absence proves nothing.
    await write([voucher('new')]);
  });

  it('records the keys of each page and lists the live, older vouchers the scan did not see', async () => {
    await write([voucher('a'), voucher('c')], { scanId: 42n });
    await write([voucher('a')], { scanId: 43n });
    expect(await listUnseen(db.prisma, { source: 'carecloud', scanId: 42n, scanStartedAt, limit: 10 })).toEqual(['b', 'd']);
    expect(await listUnseen(db.prisma, { source: 'carecloud', scanId: 42n, scanStartedAt, limit: 1 })).toEqual(['b']);
    // A scan id belongs to one source's scan; another source's scan has its own.
    expect(await listUnseen(db.prisma, { source: 'cin7', scanId: 44n, scanStartedAt, limit: 10 })).toEqual(['a']);
  });

  it('marks vanished vouchers deleted once, and spares a key the scan saw after all', async () => {
    await write([voucher('a')], { scanId: 42n });
    expect(await markVanished(db.prisma, { source: 'carecloud', scanId: 42n, sourceIds: ['a', 'b', 'd'], runId: 8n })).toBe(2);
    expect(await stored('a')).toMatchObject({ is_deleted: false, status: 'active' });
    expect(await stored('b')).toMatchObject({ is_deleted: true, status: 'deleted', last_run_id: '8' });
    expect((await stored('b'))?.deleted_at).toBeInstanceOf(Date);
    expect(await markVanished(db.prisma, { source: 'carecloud', scanId: 42n, sourceIds: ['b', 'd'], runId: 9n })).toBe(0);
    expect(await stored('b')).toMatchObject({ last_run_id: '8' });
    expect(await stored('a', 'cin7')).toMatchObject({ is_deleted: false });
    expect(await listUnseen(db.prisma, { source: 'carecloud', scanId: 42n, scanStartedAt, limit: 10 })).toEqual(['c']);
  });

  it('forgets a finished scan', async () => {
    await write([voucher('a'), voucher('b')], { scanId: 42n });
    await write([voucher('c')], { scanId: 43n });
    expect(await clearScan(db.prisma, 42n)).toBe(2);
    expect(await listUnseen(db.prisma, { source: 'carecloud', scanId: 42n, scanStartedAt, limit: 10 })).toEqual(['a', 'b', 'c', 'd']);
    expect(await db.prisma.scanSeen.count()).toBe(1);
  });
});

describe('reporting.vouchers', () => {
  it('shows every voucher with the documented columns and a status that says deleted whenever it is', async () => {
    await write([voucher('live'), voucher('inactive', { status: 'inactive' }), voucher('del', { status: 'active', isDeleted: true })]);
    await write([voucher('GIFT', { sourceModifiedAt: null })], { source: 'cin7' });
    const rows = await db.prisma.$queryRawUnsafe<Record<string, unknown>[]>(
      `SELECT * FROM reporting.vouchers ORDER BY source, source_id`,
    );
    expect(Object.keys(rows[0]!)).toEqual(expect.arrayContaining([
      'source', 'source_id', 'code', 'customer_id', 'status', 'amount', 'redeemed_amount', 'valid_from', 'valid_to',
      'applied_at', 'source_created_at', 'source_modified_at', 'is_deleted', 'deleted_at', 'first_seen_at',
      'last_synced_at', 'raw',
    ]));
    expect(rows.map((r) => [r.source, r.source_id, r.status])).toEqual([
      ['carecloud', 'del', 'deleted'],
      ['carecloud', 'inactive', 'inactive'],
      ['carecloud', 'live', 'active'],
      ['cin7', 'GIFT', 'active'],
    ]);
  });
});
