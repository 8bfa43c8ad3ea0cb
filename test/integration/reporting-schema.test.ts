/**
 * The reporting schema as BI tools meet it, after syncs of the fake servers: the fields promoted from raw, Cin7's
 * customer 0 as null, a status filter that uses its index, statistics fresh after the first backfill,
 * reporting.sync_status ("data as of") and no personal data in reporting.vouchers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pauseSource } from '../../src/db/source-control.ts';
import { createHarness, type Harness } from '../helpers/sync-harness.ts';

let h: Harness;
let syncStartedAt: Date;

interface SyncStatus {
  source: string;
  data_as_of: Date | null;
  last_success_at: Date | null;
  last_run_status: string | null;
  freshness_seconds: number | null;
  paused: boolean;
}

const syncStatus = async () =>
  h.db.$queryRawUnsafe<SyncStatus[]>(
    `SELECT source, data_as_of, last_success_at, last_run_status,
            extract(epoch FROM freshness)::float8 AS freshness_seconds, paused
       FROM reporting.sync_status ORDER BY source`,
  );

const runStart = async (runId: bigint) =>
  (await h.db.syncRun.findUniqueOrThrow({ where: { id: runId }, select: { startedAt: true } })).startedAt;

/** The plan of `sql` with sequential scans off (a table this small is read whole anyway): which index it can use. */
async function indexUse(sql: string): Promise<{ index: string; cond: string }[]> {
  return h.db.$transaction(async (tx) => {
    await tx.$executeRawUnsafe('SET LOCAL enable_seqscan = off');
    const [row] = await tx.$queryRawUnsafe<{ 'QUERY PLAN': unknown }[]>(`EXPLAIN (FORMAT JSON) ${sql}`);
    const found: { index: string; cond: string }[] = [];
    const walk = (node: Record<string, unknown>) => {
      if (typeof node['Index Name'] === 'string')
        found.push({ index: node['Index Name'], cond: String(node['Index Cond'] ?? '') });
      for (const child of (node.Plans as Record<string, unknown>[] | undefined) ?? []) walk(child);
    };
    walk((row!['QUERY PLAN'] as { Plan: Record<string, unknown> }[])[0]!.Plan);
    return found;
  });
}

beforeAll(async () => {
  h = await createHarness();
  syncStartedAt = new Date();
  await h.sync('cin7');
  await h.sync('carecloud');
});

afterAll(async () => {
  await h?.close();
});

describe('the reporting schema after a first sync of the fakes', () => {
  it('promotes Cin7 Type and Description, CareCloud store_id and reward, null for the other source', async () => {
    const rows = await h.db.$queryRawUnsafe<
      {
        source: string;
        voucher_type: string | null;
        description: string | null;
        store_id: string | null;
        reward_id: string | null;
        reward_name: string | null;
        internal: Record<string, unknown> & { reward?: Record<string, unknown> };
      }[]
    >(
      `SELECT r.source, r.voucher_type, r.description, r.store_id, r.reward_id, r.reward_name, v.raw AS internal
         FROM reporting.vouchers r JOIN vouchers v ON v.id = r.id ORDER BY r.id`,
    );
    const cin7 = rows.filter((r) => r.source === 'cin7');
    const careCloud = rows.filter((r) => r.source === 'carecloud');
    expect(cin7.length).toBeGreaterThan(0);
    expect(careCloud.length).toBeGreaterThan(0);
    for (const r of cin7) {
      expect(r.voucher_type).toBe(r.internal.type);
      expect(r.description).toBe(r.internal.description);
      expect([r.store_id, r.reward_id, r.reward_name]).toEqual([null, null, null]);
    }
    for (const r of careCloud) {
      expect(r.store_id).toBe(r.internal.store_id ?? null);
      expect(r.reward_id).toBe(r.internal.reward?.reward_id);
      expect(r.reward_name).toBe(r.internal.reward?.name);
      expect([r.voucher_type, r.description]).toEqual([null, null]);
    }
    expect(new Set(cin7.map((r) => r.voucher_type))).toEqual(new Set(['Gift Voucher', 'Credit Note']));
  });

  it("stores Cin7's customer 0 as no customer", async () => {
    const rows = await h.db.$queryRawUnsafe<{ customer_id: string | null; sent: number }[]>(
      `SELECT customer_id, (raw ->> 'customerID')::int AS sent FROM vouchers WHERE source = 'cin7'`,
    );
    const none = rows.filter((r) => r.sent === 0);
    expect(none.length).toBeGreaterThan(0);
    expect(none.every((r) => r.customer_id === null)).toBe(true);
    expect(rows.filter((r) => r.sent !== 0).every((r) => r.customer_id === String(r.sent))).toBe(true);
  });

  it('analyzes the table after the first backfill: the planner knows how many rows it holds', async () => {
    const [table] = await h.db.$queryRawUnsafe<{ estimate: number; count: number }[]>(
      `SELECT c.reltuples::float8 AS estimate, (SELECT count(*)::float8 FROM vouchers) AS count
         FROM pg_class c WHERE c.oid = 'vouchers'::regclass`,
    );
    expect(table!.count).toBeGreaterThan(1000);
    expect(Math.abs(table!.estimate - table!.count)).toBeLessThanOrEqual(table!.count * 0.1);
    // The migration analyzed the empty table; the backfill's own ANALYZE came after the sync began.
    await expect
      .poll(async () => {
        const [stat] = await h.db.$queryRawUnsafe<{ analyzed: Date | null }[]>(
          `SELECT greatest(last_analyze, last_autoanalyze) AS analyzed FROM pg_stat_user_tables WHERE relid = 'vouchers'::regclass`,
        );
        return (stat?.analyzed?.getTime() ?? 0) >= syncStartedAt.getTime();
      })
      .toBe(true);
  });

  it('filters on status through the index on (source, status), and on the customer through its own', async () => {
    expect(
      await indexUse(`SELECT id FROM reporting.vouchers WHERE source = 'carecloud' AND status = 'deleted'`),
    ).toEqual([{ index: 'vouchers_source_status_idx', cond: expect.stringMatching(/source.*status|status.*source/) }]);
    expect(await indexUse(`SELECT id FROM reporting.vouchers WHERE customer_id = '1001'`)).toEqual([
      { index: 'vouchers_customer_id_idx', cond: expect.stringContaining('customer_id') },
    ]);
    // What the index serves is what BI reads: the deleted vouchers, by the same rule as is_deleted.
    const [counts] = await h.db.$queryRawUnsafe<{ by_status: number; by_flag: number }[]>(
      `SELECT count(*) FILTER (WHERE status = 'deleted')::int AS by_status, count(*) FILTER (WHERE is_deleted)::int AS by_flag
         FROM reporting.vouchers`,
    );
    expect(counts!.by_status).toBeGreaterThan(0);
    expect(counts!.by_status).toBe(counts!.by_flag);
  });

  it('keeps e-mail addresses out of reporting.vouchers; the internal table keeps them', async () => {
    const [counts] = await h.db.$queryRawUnsafe<{ internal: number; reporting: number }[]>(
      `SELECT (SELECT count(*)::int FROM vouchers WHERE raw ? 'customerEmail' AND raw ->> 'customerEmail' LIKE '%@%') AS internal,
              (SELECT count(*)::int FROM reporting.vouchers WHERE raw::text LIKE '%@%' OR raw::text ILIKE '%email%') AS reporting`,
    );
    expect(counts!.internal).toBeGreaterThan(0);
    expect(counts!.reporting).toBe(0);
  });
});

describe('reporting.without_personal_data', () => {
  it('removes personal keys at any depth, in any spelling, and e-mail addresses inside texts', async () => {
    const input = {
      code: 'GV-1',
      CustomerEmail: 'jan@example.com',
      customer_phone: '+420 777 000 000',
      reward: { name: 'Birthday cake', store_list: [{ name: 'Brno Centrum', First_Name: 'Jan', 'e-mail': 'a@b.cz' }] },
      note: 'Reissued, ask jan.novak@example.com',
      amount: 10,
    };
    const [row] = await h.db.$queryRawUnsafe<{ masked: unknown }[]>(
      `SELECT reporting.without_personal_data($1::jsonb) AS masked`,
      JSON.stringify(input),
    );
    expect(row!.masked).toEqual({
      code: 'GV-1',
      reward: { name: 'Birthday cake', store_list: [{ name: 'Brno Centrum' }] },
      note: 'Reissued, ask (e-mail removed)',
      amount: 10,
    });
  });
});

describe('reporting.sync_status', () => {
  it('says per source up to when the data is complete, how the last run ended and whether it is paused', async () => {
    const first = await syncStatus();
    const runs = await h.db.syncRun.findMany({ orderBy: { id: 'asc' } });
    const startOf = (source: string) => runs.find((r) => r.source === source)!.startedAt;
    expect(first).toEqual([
      expect.objectContaining({
        source: 'carecloud',
        data_as_of: startOf('carecloud'),
        last_run_status: 'succeeded',
        paused: false,
      }),
      expect.objectContaining({
        source: 'cin7',
        data_as_of: startOf('cin7'),
        last_run_status: 'succeeded',
        paused: false,
      }),
    ]);
    for (const row of first) {
      expect(row.last_success_at!.getTime()).toBeGreaterThanOrEqual(row.data_as_of!.getTime());
      expect(row.freshness_seconds).toBeGreaterThanOrEqual(0);
    }

    // An incremental run of CareCloud reads every change (by last_change); one of Cin7 reads new vouchers only, so
    // Cin7's data stays as of its first load until a reconciliation completes.
    const careCloud = await h.sync('carecloud');
    const cin7 = await h.sync('cin7');
    const second = await syncStatus();
    expect(second.map((r) => [r.source, r.data_as_of])).toEqual([
      ['carecloud', await runStart(careCloud.runId)],
      ['cin7', startOf('cin7')],
    ]);
    expect(second[1]!.last_success_at!.getTime()).toBeGreaterThan(first[1]!.last_success_at!.getTime());
    const reconciliation = await h.sync('cin7', 'full');
    expect((await syncStatus())[1]!.data_as_of).toEqual(await runStart(reconciliation.runId));
    expect(cin7.runId).toBeLessThan(reconciliation.runId);

    await pauseSource(h.db, 'cin7', 'bi-test@host', new Date());
    expect((await syncStatus()).map((r) => [r.source, r.paused])).toEqual([
      ['carecloud', false],
      ['cin7', true],
    ]);
  });
});
