/**
 * Part 1 — the page write. Rows per second of `writePage` (one set-based statement per page, newer wins,
 * unchanged rows skipped) against what else one could write, on the same 250-row pages of realistic
 * vouchers (the fakes' records through the real mappers), for new rows and for pages where nothing changed:
 *
 * - row-at-a-time Prisma `upsert`, what most integrations do (it rewrites unchanged rows);
 * - COPY into a temporary table, then one INSERT … SELECT … ON CONFLICT with writePage's semantics;
 * - the same merge fed by a multi-row INSERT instead of COPY (what one does without COPY);
 * - the ceiling: COPY into a table without any index or constraint (plain append, no hashing, no merge).
 */
import { createHash } from 'node:crypto';
import pg from 'pg';
import { createPrisma, type PrismaClient } from '../src/db/client.ts';
import { writePage } from '../src/db/write-page.ts';
import { createFakeCareCloud } from '../src/fake/carecloud.ts';
import { createFakeCin7 } from '../src/fake/cin7.ts';
import type { Prisma } from '../src/generated/prisma/client.ts';
import { mapCareCloudVoucher } from '../src/sources/carecloud/map.ts';
import { mapCin7Voucher } from '../src/sources/cin7/vouchers.ts';
import type { VoucherRow } from '../src/types.ts';
import { copyField, copyFrom } from './copy-from.ts';
import { createDatabase, settleQuietly } from './infra.ts';
import type { Check, WriterOptions } from './report.ts';

export const PAGE_SIZE = 250;
const RUN_ID = 1n;

interface Page {
  source: 'carecloud' | 'cin7';
  rows: VoucherRow[];
}

type Phase = 'new' | 'unchanged';

interface Method {
  name: string;
  /** Runs with the history triggers on (every other method runs with them off: the issue's "history off"). */
  history?: boolean;
  /** Runs before each round (fresh connection state, staging tables). */
  prepare?(): Promise<void>;
  write(page: Page, pass: number): Promise<{ written: number }>;
}

export interface WriterMeasurement {
  method: string;
  phase: Phase;
  rowsPerSecond: number;
  /** Every round's rows per second; the median is reported. */
  rounds: number[];
  /** Rows the method reported as inserted or updated in its last round (null when it cannot tell). */
  written: number | null;
}

/** How fast the real mappers turn raw records into rows (measured while building the pages). */
export interface MappingRate {
  source: string;
  records: number;
  recordsPerSecond: number;
}

export interface WriterResult {
  rows: number;
  mapping: MappingRate[];
  pages: number;
  pageSize: number;
  rejectedByMappers: number;
  copyImplementation: string;
  measurements: WriterMeasurement[];
  checks: Check[];
}

/** Pages of realistic vouchers: the fakes' records as their APIs serve them, mapped by the real mappers. */
export async function buildPages(
  rowsPerSource: number,
): Promise<{ pages: Page[]; rejected: number; mapping: MappingRate[] }> {
  const pagesPerSource = Math.ceil(rowsPerSource / PAGE_SIZE);
  const careCloud = createFakeCareCloud({ seed: 11, count: pagesPerSource * PAGE_SIZE + 50, rateLimits: null });
  const cin7 = createFakeCin7({ seed: 11, count: pagesPerSource * PAGE_SIZE + 50, rateLimits: null });
  const pages: Page[] = [];
  let rejected = 0;
  const mapping = { carecloud: { records: 0, ms: 0 }, cin7: { records: 0, ms: 0 } };
  const keep = (
    source: Page['source'],
    records: unknown[],
    map: (raw: unknown) => ReturnType<typeof mapCin7Voucher>,
  ) => {
    const rows: VoucherRow[] = [];
    const started = performance.now();
    for (const raw of records) {
      const result = map(raw);
      if (result.ok) rows.push(result.row);
      else rejected++;
    }
    mapping[source].ms += performance.now() - started;
    mapping[source].records += records.length;
    pages.push({ source, rows });
  };
  try {
    const ccUrl = await careCloud.start();
    const c7Url = await cin7.start();
    const login = await fetch(`${ccUrl}/users/actions/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        user_external_application_id: careCloud.credentials.appId,
        login: careCloud.credentials.login,
        password: careCloud.credentials.password,
      }),
    });
    const token = ((await login.json()) as { data: { bearer_token: string } }).data.bearer_token;
    const basic = `Basic ${Buffer.from(`${cin7.credentials.username}:${cin7.credentials.apiKey}`).toString('base64')}`;
    for (let i = 0; i < pagesPerSource; i++) {
      const cc = await fetch(
        `${ccUrl}/vouchers?count=${PAGE_SIZE}&offset=${i * PAGE_SIZE}&sort_field=last_change&sort_direction=ASC`,
        {
          headers: { authorization: `Bearer ${token}` },
        },
      );
      keep('carecloud', ((await cc.json()) as { data: { vouchers: unknown[] } }).data.vouchers, (raw) =>
        mapCareCloudVoucher(raw, careCloud.timezone),
      );
      const c7 = await fetch(
        `${c7Url}/v1/Voucher?rows=${PAGE_SIZE}&page=${i + 1}&order=${encodeURIComponent('CreatedDate ASC')}`,
        {
          headers: { authorization: basic },
        },
      );
      keep('cin7', (await c7.json()) as unknown[], (raw) => mapCin7Voucher(raw, 'UTC'));
    }
  } finally {
    await Promise.all([careCloud.stop(), cin7.stop()]);
  }
  // One source after the other, as two streams would write them.
  pages.sort((a, b) => (a.source === b.source ? 0 : a.source === 'carecloud' ? -1 : 1));
  const rates = Object.entries(mapping).map(([source, m]) => ({
    source,
    records: m.records,
    recordsPerSecond: m.records / (m.ms / 1000),
  }));
  return { pages, rejected, mapping: rates };
}

const STAGE_COLUMNS = `ord, source_id, code, customer_id, status, amount, redeemed_amount, valid_from, valid_to, applied_at,
  source_created_at, source_modified_at, is_deleted, voucher_type, description, store_id, reward_id, reward_name, raw`;

const CREATE_STAGE = `
CREATE TEMP TABLE IF NOT EXISTS page_stage (
  ord int, source_id text, code text, customer_id text, status text, amount numeric, redeemed_amount numeric,
  valid_from timestamptz, valid_to timestamptz, applied_at timestamptz, source_created_at timestamptz,
  source_modified_at timestamptz, is_deleted boolean, voucher_type text, description text, store_id text,
  reward_id text, reward_name text, raw jsonb
) ON COMMIT DELETE ROWS`;

// writePage's statement, reading the staged page instead of a JSON parameter. $1 source, $2 run id.
const MERGE = `
WITH page AS (
  SELECT DISTINCT ON (s.source_id) s.*, sha256(convert_to(s.raw::text, 'UTF8')) AS content_hash
    FROM page_stage s
   ORDER BY s.source_id, s.source_modified_at DESC NULLS LAST, s.ord DESC
),
written AS (
  INSERT INTO vouchers AS v (source, source_id, code, customer_id, status, amount, redeemed_amount, valid_from,
         valid_to, applied_at, source_created_at, source_modified_at, is_deleted, deleted_at, raw, content_hash,
         first_seen_at, last_synced_at, last_run_id, voucher_type, description, store_id, reward_id, reward_name)
  SELECT $1, p.source_id, p.code, p.customer_id, CASE WHEN p.is_deleted THEN 'deleted' ELSE p.status END, p.amount,
         p.redeemed_amount, p.valid_from, p.valid_to, p.applied_at, p.source_created_at, p.source_modified_at,
         p.is_deleted, CASE WHEN p.is_deleted THEN now() END, p.raw, p.content_hash, now(), now(), $2::bigint,
         p.voucher_type, p.description, p.store_id, p.reward_id, p.reward_name
    FROM page p
   ORDER BY p.source_id
  ON CONFLICT (source, source_id) DO UPDATE SET
         code = EXCLUDED.code, customer_id = EXCLUDED.customer_id, status = EXCLUDED.status, amount = EXCLUDED.amount,
         redeemed_amount = EXCLUDED.redeemed_amount, valid_from = EXCLUDED.valid_from, valid_to = EXCLUDED.valid_to,
         applied_at = EXCLUDED.applied_at, source_created_at = EXCLUDED.source_created_at,
         source_modified_at = EXCLUDED.source_modified_at, is_deleted = EXCLUDED.is_deleted,
         deleted_at = CASE WHEN EXCLUDED.is_deleted THEN COALESCE(v.deleted_at, EXCLUDED.deleted_at) END,
         raw = EXCLUDED.raw, content_hash = EXCLUDED.content_hash, last_synced_at = EXCLUDED.last_synced_at,
         last_run_id = EXCLUDED.last_run_id, voucher_type = EXCLUDED.voucher_type, description = EXCLUDED.description,
         store_id = EXCLUDED.store_id, reward_id = EXCLUDED.reward_id, reward_name = EXCLUDED.reward_name
   WHERE (v.content_hash <> EXCLUDED.content_hash OR v.is_deleted <> EXCLUDED.is_deleted)
     AND (v.source_modified_at IS NULL OR EXCLUDED.source_modified_at IS NULL
          OR EXCLUDED.source_modified_at >= v.source_modified_at)
  RETURNING (xmax = 0) AS inserted
)
SELECT count(*)::int AS written FROM written`;

const CEILING_COLUMNS = `source, source_id, code, customer_id, status, amount, redeemed_amount, valid_from, valid_to, applied_at,
  source_created_at, source_modified_at, is_deleted, voucher_type, description, store_id, reward_id, reward_name, raw`;

const CREATE_CEILING = `
CREATE TABLE IF NOT EXISTS copy_ceiling (
  source text, source_id text, code text, customer_id text, status text, amount numeric(18,4),
  redeemed_amount numeric(18,4), valid_from timestamptz, valid_to timestamptz, applied_at timestamptz,
  source_created_at timestamptz, source_modified_at timestamptz, is_deleted boolean, voucher_type text,
  description text, store_id text, reward_id text, reward_name text, raw jsonb
)`;

function stageFields(row: VoucherRow): (string | null)[] {
  return [
    row.sourceId,
    row.code,
    row.customerId,
    row.status,
    row.amount,
    row.redeemedAmount,
    row.validFrom,
    row.validTo,
    row.appliedAt,
    row.sourceCreatedAt,
    row.sourceModifiedAt,
    row.isDeleted ? 't' : 'f',
    row.voucherType ?? null,
    row.description ?? null,
    row.storeId ?? null,
    row.rewardId ?? null,
    row.rewardName ?? null,
    JSON.stringify(row.raw),
  ];
}

function copyPayload(rows: VoucherRow[], first: (row: VoucherRow, index: number) => string): string {
  let text = '';
  rows.forEach((row, i) => {
    text += `${first(row, i)}\t${stageFields(row).map(copyField).join('\t')}\n`;
  });
  return text;
}

function multiRowInsert(rows: VoucherRow[]): { text: string; values: unknown[] } {
  const values: unknown[] = [];
  const tuples = rows.map((row, i) => {
    const staged = stageFields(row);
    const fields = [i, ...staged.slice(0, 11), row.isDeleted, ...staged.slice(12)];
    const start = values.length;
    values.push(...fields);
    return `(${fields.map((_, j) => `$${start + j + 1}`).join(',')})`;
  });
  return { text: `INSERT INTO page_stage (${STAGE_COLUMNS}) VALUES ${tuples.join(',')}`, values };
}

const toDate = (value: string | null) => (value === null ? null : new Date(value));

function prismaData(row: VoucherRow) {
  return {
    code: row.code,
    customerId: row.customerId,
    status: row.status,
    amount: row.amount,
    redeemedAmount: row.redeemedAmount,
    validFrom: toDate(row.validFrom),
    validTo: toDate(row.validTo),
    appliedAt: toDate(row.appliedAt),
    sourceCreatedAt: toDate(row.sourceCreatedAt),
    sourceModifiedAt: toDate(row.sourceModifiedAt),
    isDeleted: row.isDeleted,
    deletedAt: row.isDeleted ? new Date() : null,
    raw: row.raw as Prisma.InputJsonValue,
    contentHash: new Uint8Array(createHash('sha256').update(JSON.stringify(row.raw)).digest()),
    lastSyncedAt: new Date(),
    lastRunId: RUN_ID,
  };
}

function createMethods(prisma: PrismaClient, client: pg.Client): Method[] {
  const ourWrite = async (page: Page, scanId?: bigint) => {
    const result = await writePage(prisma, {
      source: page.source,
      stream: 'vouchers',
      runId: RUN_ID,
      rows: page.rows,
      rejects: [],
      ...(scanId !== undefined && { scanId }),
    });
    return { written: result.inserted + result.updated };
  };
  const merge = async (source: string) => {
    const { rows } = await client.query<{ written: number }>(MERGE, [source, RUN_ID.toString()]);
    return rows[0]?.written ?? 0;
  };
  return [
    { name: 'writePage', write: (page) => ourWrite(page) },
    { name: 'writePage, history on', history: true, write: (page) => ourWrite(page) },
    {
      name: 'writePage, full scan (+ scan_seen)',
      write: (page, pass) => ourWrite(page, BigInt(pass)),
    },
    {
      name: 'Prisma upsert, row at a time',
      async write(page) {
        for (const row of page.rows) {
          const data = prismaData(row);
          await prisma.voucher.upsert({
            where: { source_sourceId: { source: page.source, sourceId: row.sourceId } },
            create: { source: page.source, sourceId: row.sourceId, ...data },
            update: data,
          });
        }
        return { written: page.rows.length };
      },
    },
    {
      name: 'COPY to temp table + merge',
      prepare: async () => void (await client.query(CREATE_STAGE)),
      async write(page) {
        await client.query('BEGIN');
        try {
          await copyFrom(
            client,
            `COPY page_stage (${STAGE_COLUMNS}) FROM STDIN`,
            copyPayload(page.rows, (_row, i) => String(i)),
          );
          const written = await merge(page.source);
          await client.query('COMMIT');
          return { written };
        } catch (error) {
          await client.query('ROLLBACK');
          throw error;
        }
      },
    },
    {
      name: 'multi-row INSERT to temp table + merge',
      prepare: async () => void (await client.query(CREATE_STAGE)),
      async write(page) {
        await client.query('BEGIN');
        try {
          const insert = multiRowInsert(page.rows);
          await client.query(insert.text, insert.values);
          const written = await merge(page.source);
          await client.query('COMMIT');
          return { written };
        } catch (error) {
          await client.query('ROLLBACK');
          throw error;
        }
      },
    },
    {
      name: 'ceiling: COPY into an unindexed table',
      prepare: async () => void (await client.query(CREATE_CEILING)),
      async write(page) {
        await copyFrom(
          client,
          `COPY copy_ceiling (${CEILING_COLUMNS}) FROM STDIN`,
          copyPayload(page.rows, () => page.source),
        );
        return { written: page.rows.length };
      },
    },
  ];
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

export async function runWriter(options: WriterOptions, log: (line: string) => void): Promise<WriterResult> {
  const { pages, rejected, mapping } = await buildPages(options.rowsPerSource);
  const rows = pages.reduce((sum, p) => sum + p.rows.length, 0);
  log(`writer: ${pages.length} pages, ${rows} rows (${rejected} records rejected by the mappers, left out)`);
  const database = await createDatabase('bench_writer');
  const prisma = createPrisma(database.url, { max: 1 });
  const client = new pg.Client({ connectionString: database.url });
  // A lost connection fails the query under way; without a listener it would also end the process.
  client.on('error', () => undefined);
  await client.connect();
  const measurements: WriterMeasurement[] = [];
  const written: Record<string, Record<Phase, number>> = {};
  let history: HistoryStorage | null = null;
  try {
    await prisma.$queryRawUnsafe('SELECT 1'); // connect before timing
    const methods = createMethods(prisma, client);
    const perPhase = new Map(methods.map((m) => [m.name, { new: [] as number[], unchanged: [] as number[] }]));
    // Round-robin: every method's k-th round runs before any method's (k+1)-th, so that a burst of other work on
    // the machine lands on all of them alike rather than on one; each figure is the median of its rounds.
    for (let round = 0; round < options.rounds; round++) {
      await settleQuietly(`writer round ${round + 1}`, log);
      for (const method of methods) {
        await client.query('TRUNCATE vouchers, scan_seen, voucher_versions, voucher_events, voucher_daily_pending');
        await client.query(`ALTER TABLE vouchers ${method.history ? 'ENABLE' : 'DISABLE'} TRIGGER USER`);
        await client.query('DROP TABLE IF EXISTS copy_ceiling');
        await method.prepare?.();
        let pass = 0;
        for (const phase of ['new', 'unchanged'] as const) {
          pass++;
          await client.query('CHECKPOINT');
          let count = 0;
          const started = performance.now();
          for (const page of pages) count += (await method.write(page, pass)).written;
          const seconds = (performance.now() - started) / 1000;
          perPhase.get(method.name)![phase].push(rows / seconds);
          (written[method.name] ??= { new: 0, unchanged: 0 })[phase] = count;
          if (method.history && phase === 'unchanged') history = await historyStorage(client);
        }
      }
    }
    for (const method of methods) {
      for (const phase of ['new', 'unchanged'] as const) {
        const rounds = perPhase.get(method.name)![phase];
        const rowsPerSecond = median(rounds);
        measurements.push({
          method: method.name,
          phase,
          rowsPerSecond,
          rounds,
          written: written[method.name]?.[phase] ?? null,
        });
        log(
          `writer: ${method.name.padEnd(42)} ${phase.padEnd(9)} ${fmt(rowsPerSecond).padStart(9)} rows/s  (rounds: ${rounds.map(fmt).join(', ')})`,
        );
      }
    }
  } finally {
    await client.end();
    await prisma.$disconnect();
    await database.drop();
  }
  const checks = writerChecks(measurements, rows);
  checks.push(...historyChecks(measurements, history));
  for (const m of mapping) {
    checks.push({
      part: 'writer',
      metric: `mapping ${m.source} records (${m.source === 'carecloud' ? 'mapCareCloudVoucher' : 'mapCin7Voucher'})`,
      value: `${fmt(m.recordsPerSecond)} rows/s`,
      target: '(reference)',
      met: null,
    });
  }
  return {
    rows,
    mapping,
    pages: pages.length,
    pageSize: PAGE_SIZE,
    rejectedByMappers: rejected,
    copyImplementation:
      'COPY FROM STDIN through pg.Client.query(submittable) (bench/copy-from.ts); pg-copy-streams is not installed',
    measurements,
    checks,
  };
}

function writerChecks(measurements: WriterMeasurement[], rows: number): Check[] {
  const rate = (method: string, phase: Phase) =>
    measurements.find((m) => m.method === method && m.phase === phase)?.rowsPerSecond ?? NaN;
  const checks: Check[] = [];
  for (const phase of ['new', 'unchanged'] as const) {
    const ours = rate('writePage', phase);
    const label = phase === 'new' ? 'new rows' : 'unchanged pages';
    checks.push({ part: 'writer', metric: `writePage, ${label}`, value: `${fmt(ours)} rows/s`, target: '', met: null });
    checks.push(
      ratioCheck(`÷ Prisma row-at-a-time upsert (${label})`, ours / rate('Prisma upsert, row at a time', phase), 30),
    );
    checks.push(ratioCheck(`÷ COPY + merge (${label})`, ours / rate('COPY to temp table + merge', phase), 0.9));
    checks.push({
      part: 'writer',
      metric: `writePage ÷ ceiling: COPY into unindexed table (${label})`,
      value: `${(ours / rate('ceiling: COPY into an unindexed table', phase)).toFixed(2)}×`,
      target: '(reference)',
      met: null,
    });
  }
  const wrote = (method: string, phase: Phase) =>
    measurements.find((m) => m.method === method && m.phase === phase)?.written;
  const correct = wrote('writePage', 'new') === rows && wrote('writePage', 'unchanged') === 0;
  checks.push({
    part: 'writer',
    metric: 'writePage inserted every row, then rewrote none',
    value: `${wrote('writePage', 'new')} / ${wrote('writePage', 'unchanged')}`,
    target: `${rows} / 0`,
    met: correct,
  });
  return checks;
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

function ratioCheck(metric: string, ratio: number, target: number): Check {
  return {
    part: 'writer',
    metric: `writePage ${metric}`,
    value: `${ratio.toFixed(2)}×`,
    target: `≥ ${target}×`,
    met: ratio >= target,
  };
}

interface HistoryStorage {
  versions: number;
  /** Bytes of voucher_versions with its indexes, per million versions. */
  versionBytesPerMillion: number;
  events: number;
  /** Bytes of voucher_events with its indexes, per million events. */
  eventBytesPerMillion: number;
}

/**
 * The history's size on disk (tables with their indexes) per million rows, once every voucher of a first load has
 * changed once (its amount and its Cin7 RedeemedAmount: a closed version and an observed redemption each).
 */
async function historyStorage(client: pg.Client): Promise<HistoryStorage> {
  await client.query(
    `UPDATE vouchers SET amount = amount + 1, redeemed_amount = CASE WHEN redeemed_amount IS NOT NULL THEN redeemed_amount + 1 END`,
  );
  await client.query('VACUUM (ANALYZE) voucher_versions, voucher_events');
  const { rows } = await client.query<{ versions: string; events: string; vbytes: string; ebytes: string }>(
    `SELECT (SELECT count(*) FROM voucher_versions) AS versions, (SELECT count(*) FROM voucher_events) AS events,
            pg_total_relation_size('voucher_versions') AS vbytes, pg_total_relation_size('voucher_events') AS ebytes`,
  );
  const r = rows[0]!;
  const perMillion = (bytes: string, count: string) => (Number(count) > 0 ? (Number(bytes) / Number(count)) * 1e6 : 0);
  return {
    versions: Number(r.versions),
    versionBytesPerMillion: perMillion(r.vbytes, r.versions),
    events: Number(r.events),
    eventBytesPerMillion: perMillion(r.ebytes, r.events),
  };
}

/** The history's cost: throughput with it against without (issue: within 15 %; unchanged pages: nothing extra). */
function historyChecks(measurements: WriterMeasurement[], storage: HistoryStorage | null): Check[] {
  const rate = (method: string, phase: Phase) =>
    measurements.find((m) => m.method === method && m.phase === phase)?.rowsPerSecond ?? NaN;
  const checks: Check[] = [];
  for (const [phase, target, label] of [
    ['new', 0.85, 'new rows'],
    ['unchanged', 0.95, 'unchanged pages'],
  ] as const) {
    const ratio = rate('writePage, history on', phase) / rate('writePage', phase);
    checks.push({
      part: 'writer',
      metric: `writePage history on ÷ off (${label})`,
      value: `${ratio.toFixed(2)}×`,
      target: `≥ ${target}×`,
      met: ratio >= target,
    });
  }
  if (storage) {
    const mb = (bytes: number) => `${Math.round(bytes / 1024 ** 2)} MB`;
    checks.push({
      part: 'writer',
      metric: `history storage per million versions (tables + indexes; ${fmt(storage.versions)} measured)`,
      value: mb(storage.versionBytesPerMillion),
      target: '(reference)',
      met: null,
    });
    checks.push({
      part: 'writer',
      metric: `events storage per million events (${fmt(storage.events)} measured)`,
      value: mb(storage.eventBytesPerMillion),
      target: '(reference)',
      met: null,
    });
  }
  return checks;
}
