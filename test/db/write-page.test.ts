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
  if (overrides.raw === undefined)
    row.raw = { voucher_id: sourceId, value: row.amount, state: row.status, last_change: row.sourceModifiedAt };
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
    const result = await write([voucher('a'), voucher('b', { amount: '12.3456', redeemedAmount: '0.0001' })], {
      runId: 7n,
    });
    expect(result).toEqual({ inserted: 2, updated: 0, unchanged: 0, rejected: 0 });
    const b = await stored('b');
    expect(b).toMatchObject({
      status: 'active',
      amount: '12.3456',
      redeemed_amount: '0.0001',
      is_deleted: false,
      deleted_at: null,
      last_run_id: '7',
    });
    expect(b?.raw).toEqual({
      voucher_id: 'b',
      value: '12.3456',
      state: 'active',
      last_change: '2026-01-02T10:00:00.000Z',
    });
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
    const changed = voucher('a', {
      amount: '80.5000',
      status: 'inactive',
      sourceModifiedAt: '2026-02-01T00:00:00.000Z',
    });
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
    const cin7 = (amount: string) =>
      voucher('GIFT-1', { sourceModifiedAt: null, amount, raw: { code: 'GIFT-1', amount } });
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
    const editedWhileDeleted = {
      ...deleted,
      sourceModifiedAt: '2026-02-02T00:00:00.000Z',
      raw: { voucher_id: 'a', note: 'x' },
    };
    expect(await write([editedWhileDeleted], { runId: 3n })).toMatchObject({ updated: 1 });
    expect(await stored('a')).toMatchObject({ is_deleted: true, deleted_at: LONG_AGO, last_run_id: '3' });

    const back = voucher('a', { sourceModifiedAt: '2026-03-01T00:00:00.000Z' });
    expect(await write([back], { runId: 4n })).toMatchObject({ updated: 1 });
    expect(await stored('a')).toMatchObject({
      is_deleted: false,
      deleted_at: null,
      status: 'active',
      last_run_id: '4',
    });
  });

  it('stores decimal texts exactly, with the digits given (numeric has no scale)', async () => {
    const amounts = ['12.3456', '99999999999999.9999', '-0.0001', '0.1', '1234567.89', '123456789012345678.123456789'];
    await write(amounts.map((amount, i) => voucher(`n${i}`, { amount })));
    const rows = await db.prisma.$queryRawUnsafe<{ amount: string }[]>(
      `SELECT amount::text FROM vouchers WHERE source_id LIKE 'n%' ORDER BY source_id`,
    );
    expect(rows.map((r) => r.amount)).toEqual(amounts);
  });

  it('sets aside a row PostgreSQL would refuse, instead of failing the page', async () => {
    const page = [
      voucher('ok'),
      voucher('huge', { amount: '123456789012345.5' }),
      voucher('carry', { redeemedAmount: '99999999999999.99995' }),
      voucher('too-long', { amount: `1${'0'.repeat(140_000)}` }),
      voucher('words', { amount: '12,50' }),
      voucher('no-zone', { validTo: '2026-12-31T23:59:59' }),
      voucher('feb30', { validFrom: '2026-02-30T00:00:00Z' }),
      voucher('nul', { raw: { voucher_id: 'nul', note: 'a\u0000b' } }),
    ];
    expect(await write(page)).toEqual({ inserted: 3, updated: 0, unchanged: 0, rejected: 5 });
    const rejects = await db.prisma.rejectedRecord.findMany({ orderBy: { sourceId: 'asc' } });
    expect(rejects.map((r) => [r.sourceId, r.reason])).toEqual([
      ['feb30', expect.stringContaining('validFrom')],
      ['no-zone', expect.stringContaining('validTo')],
      ['nul', 'row.raw.note contains a NUL character (at character 1), which PostgreSQL cannot store'],
      ['too-long', expect.stringMatching(/^amount "10{39}…" is not a decimal PostgreSQL's numeric can hold$/)],
      ['words', expect.stringContaining('amount')],
    ]);
    // Amounts have no scale: stored with every digit given.
    expect((await stored('huge'))?.amount).toBe('123456789012345.5');
    expect((await stored('carry'))?.redeemed_amount).toBe('99999999999999.99995');
  });

  it('stores rejects once per distinct payload and counts how often each was seen', async () => {
    const bad = (reason: string, raw: unknown, sourceId: string | null = null): RejectedRow => ({
      sourceId,
      reason,
      raw,
    });
    const rejects = [
      bad('customer_id is missing', { voucher_id: '1', value: 5 }, '1'),
      bad('customer_id is missing', { value: 5, voucher_id: '1' }, '1'),
      bad('created_at is 0000-00-00', { voucher_id: '2', created_at: '0000-00-00 00:00:00' }, '2'),
      bad('not an object', 'garbage'),
    ];
    expect(await write([], { rejects, runId: 5n })).toEqual({ inserted: 0, updated: 0, unchanged: 0, rejected: 4 });
    const again = [
      bad('customer_id is still missing', { voucher_id: '1', value: 5 }, '1'),
      bad('customer_id is still missing', { value: 5, voucher_id: '1' }, '1'),
    ];
    expect(await write([], { rejects: again, runId: 6n })).toMatchObject({ rejected: 2 });
    const rows = await db.prisma.rejectedRecord.findMany({ orderBy: { sourceId: 'asc' } });
    expect(
      rows.map((r) => ({ sourceId: r.sourceId, reason: r.reason, timesSeen: r.timesSeen, runId: r.runId, raw: r.raw })),
    ).toEqual([
      {
        sourceId: '1',
        reason: 'customer_id is still missing',
        timesSeen: 4,
        runId: 6n,
        raw: { voucher_id: '1', value: 5 },
      },
      {
        sourceId: '2',
        reason: 'created_at is 0000-00-00',
        timesSeen: 1,
        runId: 5n,
        raw: { voucher_id: '2', created_at: '0000-00-00 00:00:00' },
      },
      { sourceId: null, reason: 'not an object', timesSeen: 1, runId: 5n, raw: 'garbage' },
    ]);
    expect(rows[0]!.lastRejectedAt.getTime()).toBeGreaterThanOrEqual(rows[0]!.firstRejectedAt.getTime());
  });

  it('writes nothing when its transaction rolls back', async () => {
    await expect(
      db.prisma.$transaction(async (tx) => {
        await writePage(tx, {
          source: 'carecloud',
          stream: 'vouchers',
          runId: 1n,
          rows: [voucher('a')],
          rejects: [],
          scanId: 9n,
        });
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
    expect(await listUnseen(db.prisma, { source: 'carecloud', scanId: 42n, scanStartedAt, limit: 10 })).toEqual([
      'b',
      'd',
    ]);
    expect(await listUnseen(db.prisma, { source: 'carecloud', scanId: 42n, scanStartedAt, limit: 1 })).toEqual(['b']);
    // A scan id belongs to one source's scan; another source's scan has its own.
    expect(await listUnseen(db.prisma, { source: 'cin7', scanId: 44n, scanStartedAt, limit: 10 })).toEqual(['a']);
  });

  it('marks vanished vouchers deleted once, and spares a key the scan saw after all', async () => {
    await write([voucher('a')], { scanId: 42n });
    expect(
      await markVanished(db.prisma, { source: 'carecloud', scanId: 42n, sourceIds: ['a', 'b', 'd'], runId: 8n }),
    ).toBe(2);
    expect(await stored('a')).toMatchObject({ is_deleted: false, status: 'active' });
    expect(await stored('b')).toMatchObject({ is_deleted: true, status: 'deleted', last_run_id: '8' });
    expect((await stored('b'))?.deleted_at).toBeInstanceOf(Date);
    expect(await markVanished(db.prisma, { source: 'carecloud', scanId: 42n, sourceIds: ['b', 'd'], runId: 9n })).toBe(
      0,
    );
    expect(await stored('b')).toMatchObject({ last_run_id: '8' });
    expect(await stored('a', 'cin7')).toMatchObject({ is_deleted: false });
    expect(await listUnseen(db.prisma, { source: 'carecloud', scanId: 42n, scanStartedAt, limit: 10 })).toEqual(['c']);
  });

  it('forgets a finished scan', async () => {
    await write([voucher('a'), voucher('b')], { scanId: 42n });
    await write([voucher('c')], { scanId: 43n });
    expect(await clearScan(db.prisma, 42n)).toBe(2);
    expect(await listUnseen(db.prisma, { source: 'carecloud', scanId: 42n, scanStartedAt, limit: 10 })).toEqual([
      'a',
      'b',
      'c',
      'd',
    ]);
    expect(await db.prisma.scanSeen.count()).toBe(1);
  });
});

describe('reporting.vouchers', () => {
  it('shows every voucher with the documented columns and a status that says deleted whenever it is', async () => {
    await write([
      voucher('live'),
      voucher('inactive', { status: 'inactive' }),
      voucher('del', { status: 'active', isDeleted: true }),
    ]);
    await write([voucher('GIFT', { sourceModifiedAt: null })], { source: 'cin7' });
    const rows = await db.prisma.$queryRawUnsafe<Record<string, unknown>[]>(
      `SELECT * FROM reporting.vouchers ORDER BY source, source_id`,
    );
    expect(Object.keys(rows[0]!)).toEqual(
      expect.arrayContaining([
        'source',
        'source_id',
        'code',
        'customer_id',
        'status',
        'amount',
        'redeemed_amount',
        'valid_from',
        'valid_to',
        'applied_at',
        'source_created_at',
        'source_modified_at',
        'is_deleted',
        'deleted_at',
        'first_seen_at',
        'last_synced_at',
        'raw',
      ]),
    );
    expect(rows.map((r) => [r.source, r.source_id, r.status])).toEqual([
      ['carecloud', 'del', 'deleted'],
      ['carecloud', 'inactive', 'inactive'],
      ['carecloud', 'live', 'active'],
      ['cin7', 'GIFT', 'active'],
    ]);
  });
});

describe('writePage against what PostgreSQL cannot store', () => {
  const deep = (levels: number): unknown => {
    let value: unknown = 'bottom';
    for (let i = 0; i < levels; i++) value = { note: value };
    return value;
  };

  it('stores every amount exactly as the number the JSON held: 100/3, 0.1 + 0.2, negative, large, 1e21', async () => {
    const numbers = [100 / 3, 0.1 + 0.2, -12.345, 12345678901234.5, 1e21, 5e-7];
    const rows = numbers.map((n, i) => voucher(`n${i}`, { amount: String(n), raw: { voucher_id: `n${i}`, value: n } }));
    expect(await write(rows)).toMatchObject({ inserted: numbers.length, rejected: 0 });
    const stored = await db.prisma.$queryRawUnsafe<{ source_id: string; amount: string; exact: boolean }[]>(
      `SELECT source_id, amount::text, amount = (raw ->> 'value')::numeric AS exact FROM vouchers ORDER BY source_id`,
    );
    expect(stored.map((r) => r.amount)).toEqual([
      '33.333333333333336',
      '0.30000000000000004',
      '-12.345',
      '12345678901234.5',
      '1000000000000000000000',
      '0.0000005',
    ]);
    expect(stored.every((r) => r.exact)).toBe(true);
  });

  it('rejects a lone surrogate anywhere (value, key, nested) and a record nested 10,000 deep, naming where, and stores the rest', async () => {
    const page = [
      voucher('ok'),
      voucher('in-value', { raw: { voucher_id: 'in-value', note: 'a\ud800b' } }),
      voucher('in-key', { raw: { voucher_id: 'in-key', extra: { ['k\udc00']: 1 } } }),
      voucher('nested', { raw: { voucher_id: 'nested', reward: { list: [{ name: 'x' }, { name: '\udbff!' }] } } }),
      voucher('in-column', { code: 'c\ud801' }),
      voucher('deep', { raw: { voucher_id: 'deep', note: deep(10_000) } }),
      voucher('pair', { raw: { voucher_id: 'pair', note: 'emoji \ud83d\ude00 and "\\u0000" as text' } }),
    ];
    const run = () => write(page);
    expect(await run()).toEqual({ inserted: 2, updated: 0, unchanged: 0, rejected: 5 });
    const rejects = await db.prisma.rejectedRecord.findMany({ orderBy: { sourceId: 'asc' } });
    expect(rejects.map((r) => [r.sourceId, r.reason])).toEqual([
      [
        'deep',
        expect.stringMatching(
          /^raw\.note\.note.*… is nested more than 1000 levels deep, too deep to be written as JSON$/,
        ),
      ],
      ['in-column', 'row.code contains a lone UTF-16 surrogate (U+D801 at character 1), which PostgreSQL cannot store'],
      [
        'in-key',
        'a key of row.raw.extra contains a lone UTF-16 surrogate (U+DC00 at character 1), which PostgreSQL cannot store',
      ],
      [
        'in-value',
        'row.raw.note contains a lone UTF-16 surrogate (U+D800 at character 1), which PostgreSQL cannot store',
      ],
      [
        'nested',
        'row.raw.reward.list[1].name contains a lone UTF-16 surrogate (U+DBFF at character 0), which PostgreSQL cannot store',
      ],
    ]);
    expect(rejects.find((r) => r.sourceId === 'deep')!.reason.length).toBeLessThan(300);
    // What was received, in a form PostgreSQL stores: the surrogate replaced, the nesting cut.
    expect(rejects.find((r) => r.sourceId === 'in-value')!.raw).toEqual({ voucher_id: 'in-value', note: 'a\uFFFDb' });
    let kept = rejects.find((r) => r.sourceId === 'deep')!.raw as { note: unknown };
    for (let i = 0; i < 99; i++) kept = kept.note as { note: unknown };
    expect(kept).toEqual({ note: '(nested deeper than 100 levels: cut here)' });
    expect((await stored('pair'))?.raw).toEqual({
      voucher_id: 'pair',
      note: 'emoji \ud83d\ude00 and "\\u0000" as text',
    });
    // The same page again (a retry) does not fail either: each poison record is counted twice.
    expect(await run()).toMatchObject({ rejected: 5 });
    expect((await db.prisma.rejectedRecord.findMany()).map((r) => r.timesSeen)).toEqual([2, 2, 2, 2, 2]);
  });

  it('finds a row PostgreSQL refuses for a reason no check knows by bisecting the page, in a transaction or not', async () => {
    // Stands in for the whole class: a trigger that refuses one code with a data error (SQLSTATE 22023).
    await db.prisma.$executeRawUnsafe(`CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.code LIKE 'POISON%' THEN RAISE EXCEPTION 'refused: %', NEW.code USING ERRCODE = '22023'; END IF; RETURN NEW; END $$`);
    await db.prisma.$executeRawUnsafe(
      `CREATE TRIGGER refuse_poison BEFORE INSERT OR UPDATE ON vouchers FOR EACH ROW EXECUTE FUNCTION refuse_poison()`,
    );
    try {
      const page = Array.from({ length: 100 }, (_, i) =>
        voucher(`v${String(i).padStart(3, '0')}`, { code: i === 17 || i === 80 ? `POISON-${i}` : `C${i}` }),
      );
      const result = await db.prisma.$transaction(async (tx) => {
        const written = await writePage(tx, {
          source: 'carecloud',
          stream: 'vouchers',
          runId: 1n,
          rows: page,
          rejects: [],
          scanId: 9n,
        });
        await tx.$executeRawUnsafe(`UPDATE sync_state SET updated_at = now()`); // the transaction is still usable
        return written;
      });
      expect(result).toEqual({ inserted: 98, updated: 0, unchanged: 0, rejected: 2 });
      expect(await db.prisma.voucher.count()).toBe(98);
      expect(await db.prisma.scanSeen.count()).toBe(98);
      const rejects = await db.prisma.rejectedRecord.findMany({ orderBy: { sourceId: 'asc' } });
      expect(rejects.map((r) => [r.sourceId, r.reason])).toEqual([
        ['v017', 'PostgreSQL refused the record: refused: POISON-17'],
        ['v080', 'PostgreSQL refused the record: refused: POISON-80'],
      ]);
      // Outside a transaction too.
      expect(await write([voucher('w1'), voucher('w2', { code: 'POISON-w2' })])).toEqual({
        inserted: 1,
        updated: 0,
        unchanged: 0,
        rejected: 1,
      });
    } finally {
      await db.prisma.$executeRawUnsafe(`DROP TRIGGER refuse_poison ON vouchers; `);
      await db.prisma.$executeRawUnsafe(`DROP FUNCTION refuse_poison()`);
    }
  });

  it('a page of a source not in the registry fails whole: only data errors are narrowed down', async () => {
    await expect(write([voucher('a')], { source: 'nowhere' })).rejects.toThrow(
      '"nowhere" is not a registered source (registered: carecloud, cin7',
    );
    expect(await db.prisma.voucher.count()).toBe(0);
  });
});

describe('writePage: newer wins, but not against an implausible stored time', () => {
  const FUTURE = '2099-01-01T00:00:00.000Z';
  const real = (at: string, status: VoucherRow['status'] = 'active') =>
    voucher('a', { sourceModifiedAt: at, status, isDeleted: status === 'deleted' });

  it('a stored source_modified_at beyond implausibleAfter is replaced by any read, deletions included', async () => {
    await write([real(FUTURE)]);
    // Without the bound (as before): the newer stored time wins.
    expect(await write([real('2026-03-01T00:00:00.000Z', 'inactive')])).toMatchObject({ updated: 0, unchanged: 1 });
    const implausibleAfter = new Date('2026-06-01T01:00:00.000Z');
    expect(await write([real('2026-03-01T00:00:00.000Z', 'deleted')], { implausibleAfter })).toMatchObject({
      updated: 1,
    });
    expect(await stored('a')).toMatchObject({
      status: 'deleted',
      is_deleted: true,
      source_modified_at: new Date('2026-03-01T00:00:00.000Z'),
    });
    // From then on newer wins again.
    expect(await write([real('2026-02-01T00:00:00.000Z')], { implausibleAfter })).toMatchObject({
      updated: 0,
      unchanged: 1,
    });
  });

  it("a full scan's first read of a voucher replaces what earlier runs stored; its later reads follow newer-wins", async () => {
    await write([real('2026-05-01T00:00:00.000Z')]); // stored by an earlier run, with a wrong (too late) time
    expect(await write([real('2026-04-01T00:00:00.000Z', 'inactive')], { scanId: 50n })).toMatchObject({ updated: 1 });
    expect((await stored('a'))?.status).toBe('inactive');
    // Read again in the same scan, an older copy does not overwrite the newer one; a newer one does.
    expect(await write([real('2026-03-01T00:00:00.000Z', 'active')], { scanId: 50n })).toMatchObject({ unchanged: 1 });
    expect(await write([real('2026-04-02T00:00:00.000Z', 'deleted')], { scanId: 50n })).toMatchObject({ updated: 1 });
    expect((await stored('a'))?.status).toBe('deleted');
    // An incremental run (no scan) still follows newer-wins.
    expect(await write([real('2026-01-01T00:00:00.000Z')])).toMatchObject({ unchanged: 1 });
  });
});
