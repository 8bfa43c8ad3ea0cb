/**
 * The exact-amounts migration, applied to a database filled by the version before it: amounts that
 * numeric(18,4) rounded are recomputed from raw, exactly as parseAmount reads them, and the BI role still
 * reads the view that had to be dropped and created again.
 */
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_MIGRATIONS_DIR, migrate } from '../../src/db/migrate.ts';
import { ensureReportingRole } from '../../src/db/reporting-role.ts';
import { createLogger } from '../../src/logger.ts';
import { parseAmount } from '../../src/sources/parse.ts';
import { dropTestDatabase, uniqueDatabaseUrl } from '../helpers/db.ts';

const logger = createLogger('silent');
const MIGRATION = '20261201000000_exact_amounts_and_mapping';
const created: string[] = [];
const dirs: string[] = [];
const role = `vs_amounts_${randomBytes(3).toString('hex')}`;

afterAll(async () => {
  for (const name of created) await dropTestDatabase(name);
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  const admin = new pg.Client({ connectionString: 'postgresql://postgres@127.0.0.1:5432/postgres' });
  await admin.connect();
  await admin.query(`DROP ROLE IF EXISTS ${role}`).finally(() => admin.end());
});

/** A migrations folder holding only the init migration: the schema the previous version ran on. */
function initOnly(): string {
  const dir = mkdtempSync(join(tmpdir(), 'migrations-init-'));
  dirs.push(dir);
  cpSync(join(DEFAULT_MIGRATIONS_DIR, '20261122000000_init'), join(dir, '20261122000000_init'), { recursive: true });
  cpSync(join(DEFAULT_MIGRATIONS_DIR, 'migration_lock.toml'), join(dir, 'migration_lock.toml'));
  return dir;
}

/** Raw records as the sources send them, and what the amount columns must hold once recomputed. */
const CARECLOUD: { raw: unknown; amount: string | null }[] = [
  { raw: { voucher_id: 'third', value: 100 / 3 }, amount: '33.333333333333336' },
  { raw: { voucher_id: 'sum', value: 0.1 + 0.2 }, amount: '0.30000000000000004' },
  { raw: { voucher_id: 'negative', value: -12.34567 }, amount: '-12.34567' },
  { raw: { voucher_id: 'large', value: 12345678901234.5 }, amount: '12345678901234.5' },
  { raw: { voucher_id: 'text', value: ' 10.123456 ' }, amount: '10.123456' },
  { raw: { voucher_id: 'none', value: null }, amount: null },
  { raw: { voucher_id: 'absent' }, amount: null },
];

const CIN7: { raw: unknown; amount: string | null; redeemed: string | null }[] = [
  {
    raw: { code: 'CAMEL', amount: 2 / 3, redeemedAmount: 1 / 3 },
    amount: '0.6666666666666666',
    redeemed: '0.3333333333333333',
  },
  { raw: { Code: 'PASCAL', Amount: 1.23456789, RedeemedAmount: '0.00001' }, amount: '1.23456789', redeemed: '0.00001' },
];

describe(`migration ${MIGRATION}`, () => {
  it('recomputes every amount from raw, as parseAmount reads it, and the BI role still reads the view', async () => {
    const { name, url } = uniqueDatabaseUrl('amounts');
    created.push(name);
    await migrate(url, { logger, create: true, migrationsDir: initOnly() });
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      // Rows as the previous version wrote them: its mappers gave String(n), numeric(18,4) rounded it.
      const insert = (source: string, id: string, raw: unknown, amount: string | null, redeemed: string | null) =>
        client.query(
          `INSERT INTO vouchers (source, source_id, status, amount, redeemed_amount, raw, content_hash) VALUES ($1, $2, 'active', $3, $4, $5, '\\x00')`,
          [source, id, amount, redeemed, JSON.stringify(raw)],
        );
      for (const [i, c] of CARECLOUD.entries()) {
        const value = (c.raw as { value?: unknown }).value;
        await insert('carecloud', `c${i}`, c.raw, parseAmount(value), null);
      }
      for (const [i, c] of CIN7.entries()) {
        const raw = c.raw as Record<string, unknown>;
        await insert(
          'cin7',
          `n${i}`,
          c.raw,
          parseAmount(raw.amount ?? raw.Amount),
          parseAmount(raw.redeemedAmount ?? raw.RedeemedAmount),
        );
      }
      const before = await client.query<{ amount: string }>(`SELECT amount::text FROM vouchers WHERE source_id = 'c0'`);
      expect(before.rows[0]?.amount).toBe('33.3333');
      await ensureReportingRole(url, { role, password: `pw-${randomBytes(8).toString('hex')}` });

      expect(await migrate(url, { logger, create: true })).toContain(MIGRATION);
      const after = await client.query<{ source_id: string; amount: string | null; redeemed_amount: string | null }>(
        `SELECT source_id, amount::text, redeemed_amount::text FROM vouchers ORDER BY source, source_id`,
      );
      expect(after.rows).toEqual([
        ...CARECLOUD.map((c, i) => ({ source_id: `c${i}`, amount: c.amount, redeemed_amount: null })),
        ...CIN7.map((c, i) => ({ source_id: `n${i}`, amount: c.amount, redeemed_amount: c.redeemed })),
      ]);
      const types = await client.query<{ column_name: string; type: string }>(
        `SELECT a.attname AS column_name, format_type(a.atttypid, a.atttypmod) AS type FROM pg_attribute a
          WHERE a.attrelid = 'reporting.vouchers'::regclass AND a.attname IN ('amount', 'redeemed_amount') ORDER BY 1`,
      );
      expect(types.rows).toEqual([
        { column_name: 'amount', type: 'numeric' },
        { column_name: 'redeemed_amount', type: 'numeric' },
      ]);
      const readable = await client.query<{ ok: boolean }>(
        `SELECT has_table_privilege($1, 'reporting.vouchers', 'SELECT') AS ok`,
        [role],
      );
      expect(readable.rows[0]?.ok).toBe(true);
    } finally {
      await client.end();
    }
  });
});
