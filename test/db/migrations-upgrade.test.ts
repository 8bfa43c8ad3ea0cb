/**
 * Every migration, applied to a database filled by the version before it: for each migration of prisma/migrations, a
 * fresh database is migrated up to the one before, filled with rows every earlier schema accepts (records of the
 * fake servers' generators, in the columns of the first migration), then migrated to the end. What was stored must
 * still be there; a migration that transforms stored rows has its own check below (EXPECTED_CHANGES).
 */
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { createCareCloudData, type CareCloudVoucher } from '../../src/fake/carecloud-data.ts';
import { createCin7Data, type Cin7Voucher } from '../../src/fake/cin7-data.ts';
import { DEFAULT_MIGRATIONS_DIR, migrate, readMigrations } from '../../src/db/migrate.ts';
import { createLogger } from '../../src/logger.ts';
import { dropTestDatabase, uniqueDatabaseUrl } from '../helpers/db.ts';

const logger = createLogger('silent');
const migrations = readMigrations(DEFAULT_MIGRATIONS_DIR).map((m) => m.name);
const dirs: string[] = [];
const databases: string[] = [];

afterAll(async () => {
  for (const name of databases) await dropTestDatabase(name);
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A migrations folder holding the migrations before `target`: the schema the previous version ran on. */
function migrationsBefore(target: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'migrations-before-'));
  dirs.push(dir);
  for (const name of migrations.filter((m) => m < target))
    cpSync(join(DEFAULT_MIGRATIONS_DIR, name), join(dir, name), { recursive: true });
  cpSync(join(DEFAULT_MIGRATIONS_DIR, 'migration_lock.toml'), join(dir, 'migration_lock.toml'));
  return dir;
}

const ANCHOR = Date.UTC(2026, 10, 1);
const COUNT = 40;
const cin7Records: Record<string, unknown>[] = Array.from({ length: COUNT }, (_, seq) => {
  const record = createCin7Data({ seed: 11, count: COUNT, anchor: ANCHOR, zone: 'Pacific/Auckland' }).generate(seq);
  // The API documents PascalCase and sends camelCase: stored records of both kinds exist.
  return seq % 4 === 0 ? pascalCase(record) : record;
});
const careCloudRecords: CareCloudVoucher[] = Array.from({ length: COUNT }, (_, seq) =>
  createCareCloudData({ seed: 11, count: COUNT, anchor: ANCHOR, zone: 'Europe/Prague' }).generate(seq),
);

function pascalCase(record: Cin7Voucher): Record<string, unknown> {
  return Object.fromEntries(Object.entries(record).map(([k, v]) => [k.charAt(0).toUpperCase() + k.slice(1), v]));
}

const cin7Field = (record: Record<string, unknown>, name: string): unknown =>
  name in record ? record[name] : record[name.charAt(0).toUpperCase() + name.slice(1)];

/** One voucher per record of each source, a stream state, a run, a rejected record and a scan key: all in the columns of the first migration. */
async function fill(client: pg.Client): Promise<void> {
  const insert = `
    INSERT INTO vouchers (source, source_id, code, customer_id, status, amount, redeemed_amount, valid_to, is_deleted,
                          raw, content_hash)
    VALUES ($1, $2, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, sha256(convert_to($9::jsonb::text, 'UTF8')))`;
  for (const record of cin7Records) {
    const code = String(cin7Field(record, 'code'));
    await client.query(insert, [
      'cin7',
      code,
      String(cin7Field(record, 'customerID')),
      cin7Field(record, 'status') === 'Inactive' ? 'inactive' : 'active',
      cin7Field(record, 'amount'),
      cin7Field(record, 'redeemedAmount'),
      null,
      false,
      JSON.stringify(record),
    ]);
  }
  // The last CareCloud voucher is deleted but its status says active, where the schema still accepts that.
  const { rows } = await client.query(
    "SELECT 1 FROM pg_constraint WHERE conname = 'vouchers_deleted_status_check' AND conrelid = 'vouchers'::regclass",
  );
  const deletedMeansStatus = rows.length > 0;
  for (const [i, record] of careCloudRecords.entries()) {
    const deleted = record.state === 0 || i === COUNT - 1;
    await client.query(insert, [
      'carecloud',
      record.voucher_id,
      record.customer_id,
      record.state === 0 || (deleted && deletedMeansStatus) ? 'deleted' : record.state === 2 ? 'inactive' : 'active',
      record.value,
      null,
      '2027-01-01T00:00:00Z',
      deleted,
      JSON.stringify(record),
    ]);
  }
  await client.query(
    `INSERT INTO sync_state (source, stream, watermark, last_success_at, last_full_scan_at)
     VALUES ('cin7', 'vouchers', '2026-10-31T10:00:00Z', '2026-10-31T10:05:00Z', '2026-10-30T02:00:00Z'),
            ('carecloud', 'vouchers', '2026-10-31T11:00:00Z', '2026-10-31T11:01:00Z', NULL)`,
  );
  await client.query(
    `INSERT INTO sync_runs (source, stream, mode, status, started_at, finished_at, fetched, inserted)
     VALUES ('cin7', 'vouchers', 'full', 'succeeded', '2026-10-30T02:00:00Z', '2026-10-30T02:10:00Z', $1, $1),
            ('carecloud', 'vouchers', 'incremental', 'failed', '2026-10-31T11:00:00Z', '2026-10-31T11:00:05Z', 0, 0)`,
    [COUNT],
  );
  await client.query(
    `INSERT INTO rejected_records (source, stream, source_id, reason, raw, raw_hash)
     VALUES ('carecloud', 'vouchers', 'bad', 'value: expected a number, got the string "12,50"', '{"value": "12,50"}', '\\x01')`,
  );
  await client.query(`INSERT INTO scan_seen (scan_id, source_id) VALUES (1, 'kept')`);
}

/** What must survive every migration: the stored rows, in the columns of the first migration. */
async function fingerprint(client: pg.Client): Promise<Record<string, unknown[]>> {
  const read = async (sql: string) => (await client.query(sql)).rows;
  return {
    // customer_id and status are left out: a migration corrects them (EXPECTED_CHANGES). Amounts compare as numbers.
    vouchers: await read(
      `SELECT id::text, source, source_id, code, trim_scale(amount)::text AS amount,
              trim_scale(redeemed_amount)::text AS redeemed_amount, valid_to, is_deleted, raw, content_hash, first_seen_at
         FROM vouchers ORDER BY id`,
    ),
    sync_state: await read(
      'SELECT source, stream, watermark, last_success_at, last_full_scan_at FROM sync_state ORDER BY 1, 2',
    ),
    sync_runs: await read(
      'SELECT id::text, source, stream, mode, status, started_at, fetched FROM sync_runs ORDER BY id',
    ),
    rejected_records: await read('SELECT source, stream, source_id, reason, raw, raw_hash FROM rejected_records'),
    scan_seen: await read('SELECT scan_id::text, source_id FROM scan_seen'),
    // Once there are daily facts, every later migration keeps them (one moves them to another table).
    ...((await read(`SELECT to_regclass('reporting.voucher_daily') IS NOT NULL AS present`))[0]?.present && {
      voucher_daily: await read('SELECT * FROM reporting.voucher_daily ORDER BY day, source, status'),
    }),
  };
}

const label = (value: unknown): string | null =>
  typeof value === 'string' ? value || null : typeof value === 'number' ? String(value) : null;

/** What a migration does to the stored rows, checked once it has run on the filled database. */
const EXPECTED_CHANGES: Record<string, (client: pg.Client) => Promise<void>> = {
  async '20261204000100_reporting_schema'(client) {
    const cin7 = await client.query<{
      source_id: string;
      customer_id: string | null;
      voucher_type: string | null;
      description: string | null;
      promoted: string | null;
    }>(
      `SELECT source_id, customer_id, voucher_type, description, coalesce(store_id, reward_id, reward_name) AS promoted
         FROM vouchers WHERE source = 'cin7' ORDER BY id`,
    );
    const expected = cin7Records.map((record) => {
      const customer = cin7Field(record, 'customerID');
      return {
        source_id: String(cin7Field(record, 'code')),
        customer_id: customer === 0 ? null : String(customer),
        voucher_type: label(cin7Field(record, 'type')),
        description: label(cin7Field(record, 'description')),
        promoted: null,
      };
    });
    expect(cin7.rows).toEqual(expected);
    // The fixture holds what is checked: Cin7's customer 0, both spellings of its keys.
    expect(expected.filter((r) => r.customer_id === null).length).toBeGreaterThan(0);
    expect(expected.every((r) => r.voucher_type !== null && r.description !== null)).toBe(true);

    const careCloud = await client.query(
      `SELECT source_id, store_id, reward_id, reward_name, coalesce(voucher_type, description) AS promoted, status
         FROM vouchers WHERE source = 'carecloud' ORDER BY id`,
    );
    expect(careCloud.rows).toEqual(
      careCloudRecords.map((record, i) => ({
        source_id: record.voucher_id,
        store_id: label(record.store_id),
        reward_id: label(record.reward.reward_id),
        reward_name: label(record.reward.name),
        promoted: null,
        status: record.state === 0 || i === COUNT - 1 ? 'deleted' : record.state === 2 ? 'inactive' : 'active',
      })),
    );
    const states = await client.query(
      'SELECT source, complete_as_of, last_full_scan_at FROM sync_state ORDER BY source',
    );
    expect(states.rows).toEqual([
      { source: 'carecloud', complete_as_of: null, last_full_scan_at: null },
      {
        source: 'cin7',
        complete_as_of: new Date('2026-10-30T02:00:00Z'),
        last_full_scan_at: new Date('2026-10-30T02:00:00Z'),
      },
    ]);
    const reporting = await client.query<{ raw: Record<string, unknown> }>(
      `SELECT raw FROM reporting.vouchers WHERE source = 'cin7'`,
    );
    expect(reporting.rows.filter((r) => 'customerEmail' in r.raw || 'CustomerEmail' in r.raw)).toEqual([]);
  },
};

EXPECTED_CHANGES['20261205000000_daily_facts_folded'] = async (client) => {
  // The changes the previous version staged were folded (the facts, compared above, are the same), and the
  // vouchers stored are in them.
  const [row] = (
    await client.query<{ staged: string | null; buckets: number; issued: number }>(
      `SELECT to_regclass('voucher_daily_changes')::text AS staged,
              (SELECT count(*) FROM voucher_daily_buckets)::int AS buckets,
              (SELECT sum(issued_count) FROM voucher_daily_days)::int AS issued`,
    )
  ).rows;
  expect(row).toEqual({ staged: null, buckets: expect.any(Number), issued: 2 * COUNT });
  expect(row!.buckets).toBeGreaterThan(0);
};

describe('every migration on a database filled by the version before it', () => {
  it('finds the migrations, this test covers the ones that change stored rows', () => {
    expect(migrations.length).toBeGreaterThan(1);
    for (const name of Object.keys(EXPECTED_CHANGES)) expect(migrations).toContain(name);
  });

  it.each(migrations.slice(1))('%s applies on filled data, which survives it', async (target) => {
    const { name, url } = uniqueDatabaseUrl('upgrade');
    databases.push(name);
    await migrate(url, { logger, create: true, migrationsDir: migrationsBefore(target) });
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await fill(client);
      const before = await fingerprint(client);
      const applied = await migrate(url, { logger });
      expect(applied[0]).toBe(target);
      const after = await fingerprint(client);
      // A migration that creates the daily facts has none to keep.
      if (!('voucher_daily' in before)) delete after.voucher_daily;
      expect(after).toEqual(before);
      await EXPECTED_CHANGES[target]?.(client);
    } finally {
      await client.end();
    }
  });
});
