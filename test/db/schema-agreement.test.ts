/**
 * prisma/schema.prisma (what the Prisma client believes) and prisma/migrations (what the database is)
 * are written by hand on a machine that cannot run `prisma migrate diff`. This test is that diff: it parses
 * the schema with Prisma's own parser and compares every model, field and index with the migrated
 * database, read from pg_catalog, in both directions.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { getDmmf, type DmmfField, type DmmfIndex, type DmmfModel } from './prisma-dmmf.ts';

const schema = readFileSync(new URL('../../prisma/schema.prisma', import.meta.url), 'utf8');
const { datamodel } = getDmmf(schema);

interface Column {
  table: string;
  column: string;
  type: string;
  not_null: boolean;
  default: string | null;
}

interface Index {
  table: string;
  name: string;
  unique: boolean;
  primary: boolean;
  columns: string[];
}

let db: TestDatabase;
let columns: Column[];
let indexes: Index[];
let tables: string[];

beforeAll(async () => {
  db = await createTestDatabase({ prefix: 'schema' });
  tables = (
    await db.prisma.$queryRawUnsafe<{ name: string }[]>(
      `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'f') ORDER BY 1`,
    )
  ).map((r) => r.name);
  columns = await db.prisma.$queryRawUnsafe<Column[]>(
    `SELECT c.relname AS "table", a.attname AS "column", format_type(a.atttypid, a.atttypmod) AS type,
            a.attnotnull AS not_null, pg_get_expr(d.adbin, d.adrelid) AS "default"
       FROM pg_attribute a
       JOIN pg_class c ON c.oid = a.attrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
      WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped`,
  );
  indexes = await db.prisma.$queryRawUnsafe<Index[]>(
    `SELECT t.relname AS "table", i.relname AS name, x.indisunique AS "unique", x.indisprimary AS "primary",
            array(SELECT a.attname || CASE WHEN x.indoption[k.n - 1] & 1 = 1 THEN ' DESC' ELSE '' END
                    FROM unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)
                    JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
                   ORDER BY k.n) AS columns
       FROM pg_index x
       JOIN pg_class i ON i.oid = x.indexrelid
       JOIN pg_class t ON t.oid = x.indrelid
       JOIN pg_namespace n ON n.oid = t.relnamespace
      WHERE n.nspname = 'public'`,
  );
});

afterAll(async () => {
  await db?.drop();
});

const tableOf = (model: DmmfModel) => model.dbName ?? model.name;
const columnOf = (field: DmmfField) => field.dbName ?? field.name;
const scalarFields = (model: DmmfModel) => model.fields.filter((f) => f.kind === 'scalar' || f.kind === 'enum');

/** The PostgreSQL type Prisma's migrations create for a field, as format_type() prints it. */
function expectedType(field: DmmfField): string {
  if (field.isList) return `${expectedType({ ...field, isList: false })}[]`;
  const [native, args = []] = field.nativeType ?? [undefined, []];
  const params = args.length > 0 ? `(${args.join(',')})` : '';
  switch (`${field.type}/${native ?? ''}`) {
    case 'String/':
    case 'String/Text':
      return 'text';
    case 'String/VarChar':
      return `character varying${params}`;
    case 'String/Uuid':
      return 'uuid';
    case 'Int/':
      return 'integer';
    case 'BigInt/':
      return 'bigint';
    case 'Boolean/':
      return 'boolean';
    case 'Decimal/':
      return 'numeric(65,30)';
    case 'Decimal/Decimal':
      return `numeric${params}`;
    case 'DateTime/':
      return 'timestamp(3) without time zone';
    case 'DateTime/Date':
      return 'date';
    case 'DateTime/Timestamptz':
      return `timestamp${params || '(6)'} with time zone`;
    case 'Json/':
    case 'Json/JsonB':
      return 'jsonb';
    case 'Bytes/':
      return 'bytea';
    default:
      throw new Error(`${field.name}: ${field.type} @db.${native} is not mapped by this test yet; add it`);
  }
}

/** The column default Prisma's migrations create, as pg_get_expr() prints it; null for none. */
function expectedDefault(field: DmmfField, table: string): string | null {
  const value = field.default as
    { name?: string; args?: unknown[] } | unknown[] | string | number | boolean | undefined;
  if (value === undefined) return null;
  if (typeof value === 'object') {
    if (Array.isArray(value)) {
      if (value.length === 0) return `ARRAY[]::${expectedType(field)}`;
      throw new Error(`${field.name}: default ${JSON.stringify(value)} is not mapped by this test yet; add it`);
    }
    if (value.name === 'dbgenerated' && typeof value.args?.[0] === 'string') return value.args[0];
    if (value.name === 'autoincrement') return `nextval('${table}_${columnOf(field)}_seq'::regclass)`;
    if (value.name === 'now') return 'CURRENT_TIMESTAMP';
    throw new Error(`${field.name}: default ${JSON.stringify(value)} is not mapped by this test yet; add it`);
  }
  // A text default prints with its type's cast: 'observed'::character varying.
  if (typeof value === 'string' && field.type === 'String')
    return `'${value.replaceAll("'", "''")}'::${expectedType(field).startsWith('character varying') ? 'character varying' : 'text'}`;
  return String(value);
}

function expectedIndex(model: DmmfModel, index: DmmfIndex): Index {
  const table = tableOf(model);
  const fieldColumn = (name: string) => columnOf(model.fields.find((f) => f.name === name)!);
  const columnNames = index.fields.map((f) => fieldColumn(f.name));
  const suffix = index.type === 'id' ? 'pkey' : index.type === 'unique' ? 'key' : 'idx';
  return {
    table,
    // Prisma's default names when the schema gives no map:.
    name: index.dbName ?? (index.type === 'id' ? `${table}_pkey` : `${table}_${columnNames.join('_')}_${suffix}`),
    unique: index.type !== 'normal',
    primary: index.type === 'id',
    columns: index.fields.map((f) => `${fieldColumn(f.name)}${f.sortOrder === 'desc' ? ' DESC' : ''}`),
  };
}

describe('schema.prisma and the migrated database', () => {
  it('parses the schema with Prisma and finds its models', () => {
    expect(datamodel.models.map((m) => m.name).sort()).toEqual([
      'Installation',
      'RejectedRecord',
      'ReportingSetting',
      'ScanSeen',
      'SourceControl',
      'SyncRun',
      'SyncState',
      'Voucher',
      'VoucherDailyBucket',
      'VoucherDailyDay',
      'VoucherDailyPending',
      'VoucherEvent',
      'VoucherVersion',
    ]);
  });

  it('has exactly one table per model in public, plus Prisma history, and nothing else', () => {
    const expected = [...datamodel.models.map(tableOf), '_prisma_migrations'].sort();
    expect(tables).toEqual(expected);
  });

  it.each(datamodel.models.map((m) => [m.name, m] as const))(
    '%s: every field is a column of the right name, type, nullability and default, and no column is extra',
    (_name, model) => {
      const table = tableOf(model);
      const actual = columns
        .filter((c) => c.table === table)
        .map((c) => ({ column: c.column, type: c.type, notNull: c.not_null, default: c.default }))
        .sort((a, b) => a.column.localeCompare(b.column));
      const expected = scalarFields(model)
        .map((f) => ({
          column: columnOf(f),
          type: expectedType(f),
          notNull: f.isRequired,
          default: expectedDefault(f, table),
        }))
        .sort((a, b) => a.column.localeCompare(b.column));
      expect(actual).toEqual(expected);
    },
  );

  it.each(datamodel.models.map((m) => [m.name, m] as const))(
    '%s: primary key, unique and plain indexes match by name, columns and order, and no index is extra',
    (_name, model) => {
      const table = tableOf(model);
      const byName = (a: Index, b: Index) => a.name.localeCompare(b.name);
      const actual = indexes.filter((i) => i.table === table).sort(byName);
      const expected = datamodel.indexes
        .filter((i) => i.model === model.name)
        .map((i) => expectedIndex(model, i))
        .sort(byName);
      expect(actual).toEqual(expected);
    },
  );
});

describe('the hand-written parts of the migration', () => {
  const insert = (source: string, status: string) =>
    db.prisma.$executeRawUnsafe(
      `INSERT INTO vouchers (source, source_id, status, raw, content_hash) VALUES ($1, $2, $3, '{}', '\\x00')`,
      source,
      `${source}-${status}`,
      status,
    );

  it('accepts the two sources and the three statuses', async () => {
    for (const status of ['active', 'inactive', 'deleted']) await expect(insert('cin7', status)).resolves.toBe(1);
    await expect(insert('carecloud', 'active')).resolves.toBe(1);
  });

  it('refuses an unknown status; source names are checked against the registry (test/db/write-page.test.ts), so a new source needs no migration', async () => {
    await expect(insert('shopify', 'active')).resolves.toBe(1);
    await expect(insert('cin7', 'expired')).rejects.toThrow(/vouchers_status_check/);
  });

  it('describes the reporting view and every one of its columns for BI tools', async () => {
    const rows = await db.prisma.$queryRawUnsafe<{ column: string; description: string | null }[]>(
      `SELECT a.attname AS "column", col_description(a.attrelid, a.attnum) AS description
         FROM pg_attribute a WHERE a.attrelid = 'reporting.vouchers'::regclass AND a.attnum > 0`,
    );
    expect(rows.filter((r) => !r.description).map((r) => r.column)).toEqual([]);
    const [view] = await db.prisma.$queryRawUnsafe<{ description: string | null }[]>(
      `SELECT obj_description('reporting.vouchers'::regclass, 'pg_class') AS description`,
    );
    expect(view?.description).toMatch(/voucher/i);
  });
});
