import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { foldDailyChanges, pruneHistory, saveReportingTimezone } from '../../src/db/history.ts';
import { writePage } from '../../src/db/write-page.ts';
import { createHarness, type Harness } from '../helpers/sync-harness.ts';

let h: Harness;
beforeEach(async () => {
  h = await createHarness({ careCloud: { count: 60 }, cin7: { count: 60 } });
});
afterEach(async () => {
  await h.close();
});

interface Version {
  source_id: string;
  kind: string;
  version_from: Date;
  version_to: Date | null;
  version_from_basis: string;
  is_current: boolean;
  changed_fields: string[];
  status: string;
  redeemed_amount: string | null;
}

const versions = (source: string, sourceId?: string) =>
  h.db.$queryRawUnsafe<Version[]>(
    `SELECT source_id, kind, version_from, version_to, version_from_basis, is_current, changed_fields, status,
            redeemed_amount::text
       FROM reporting.voucher_history WHERE source = $1 AND ($2::text IS NULL OR source_id = $2)
      ORDER BY source_id, version_no`,
    source,
    sourceId ?? null,
  );

interface Event {
  source_id: string;
  event: string;
  event_at: Date;
  precision: string;
  observed_after: Date | null;
  observed_before: Date | null;
  amount: string | null;
}

const events = (source: string, sourceId?: string) =>
  h.db.$queryRawUnsafe<Event[]>(
    `SELECT source_id, event, event_at, precision, observed_after, observed_before, amount::text
       FROM reporting.voucher_events WHERE source = $1 AND ($2::text IS NULL OR source_id = $2)
      ORDER BY source_id, event_at, event`,
    source,
    sourceId ?? null,
  );

const counts = async () => {
  const [row] = await h.db.$queryRawUnsafe<{ versions: number; events: number; pending: number; daily: string }[]>(
    `SELECT (SELECT count(*) FROM voucher_versions)::int AS versions, (SELECT count(*) FROM voucher_events)::int AS events,
            (SELECT count(*) FROM voucher_daily_pending)::int AS pending,
            (SELECT md5(string_agg(d::text, ',' ORDER BY bucket, source, status)) FROM voucher_daily_pending_changes() d) AS daily`,
  );
  return row!;
};

/** Each voucher's versions follow one another with no gap and no overlap, the last one open. */
function expectContiguous(list: Version[]) {
  const bySource = new Map<string, Version[]>();
  for (const v of list) bySource.set(v.source_id, [...(bySource.get(v.source_id) ?? []), v]);
  for (const [id, chain] of bySource) {
    chain.forEach((v, i) => {
      const next = chain[i + 1];
      if (next) expect(v.version_to?.getTime(), `${id} version ${i}`).toBe(next.version_from.getTime());
      else expect(v.version_to, `${id} last version`).toBeNull();
      expect(v.is_current).toBe(next === undefined);
    });
  }
}

describe('voucher history', () => {
  it('the first load gives every voucher one version; a voucher changed three times has four, with no gaps or overlaps', async () => {
    await h.sync('carecloud', 'full');
    const first = await versions('carecloud');
    expect(first).toHaveLength(await h.db.voucher.count({ where: { source: 'carecloud' } }));
    expect(first.every((v) => v.kind === 'inserted' && v.is_current)).toBe(true);
    // A first load writes no history row: each voucher's first version is its row.
    expect(await h.db.voucherVersion.count()).toBe(0);

    const target = h.careCloud.store
      .all()
      .find((v) => v.state === 1 && !v.applied_date && Date.parse(v.valid_to) > Date.now() + 86_400_000)!;
    h.careCloud.store.update(target.voucher_id, { note: 'first change' });
    await h.sync('carecloud');
    h.careCloud.store.update(target.voucher_id, { value: target.value + 10 });
    await h.sync('carecloud');
    h.careCloud.store.softDelete(target.voucher_id);
    await h.sync('carecloud');

    const chain = await versions('carecloud', target.voucher_id);
    // The note is not a normalized field: that change is kept in raw, not as a version.
    expect(chain.map((v) => v.kind)).toEqual(['inserted', 'updated', 'deleted']);
    h.careCloud.store.update(target.voucher_id, { state: 1 });
    await h.sync('carecloud');
    const after = await versions('carecloud', target.voucher_id);
    expect(after.map((v) => v.kind)).toEqual(['inserted', 'updated', 'deleted', 'restored']);
    expect(after[1]!.changed_fields).toEqual(['amount']);
    expect(after[2]!.changed_fields).toEqual(['status', 'is_deleted']);
    expect(after[3]!.changed_fields).toEqual(['status', 'is_deleted']);
    // The first version is dated by last_change; deletion and restoration by when they were seen. (The update's
    // last_change may fall in the second of the note's change, so it may be observed too.)
    expect([after[0], after[2], after[3]].map((v) => v!.version_from_basis)).toEqual([
      'source',
      'observed',
      'observed',
    ]);
    expectContiguous(after);
    expectContiguous(await versions('carecloud'));
    expect((await events('carecloud', target.voucher_id)).map((e) => e.event)).toEqual([
      'issued',
      'deleted',
      'restored',
    ]);
  });

  it('a re-read of the same content and an older copy add no version, no event and no daily change', async () => {
    await h.sync('carecloud', 'full');
    await h.sync('cin7', 'full');
    const before = await counts();
    await h.sync('carecloud', 'full');
    await h.sync('cin7', 'full');
    expect(await counts()).toEqual(before);

    // An older copy of a voucher that changed since: newer-wins skips it, and the history with it.
    const voucher = h.careCloud.store.all().find((v) => v.state === 1)!;
    const [stored] = await h.db.$queryRawUnsafe<{ raw: Record<string, unknown>; modified: Date }[]>(
      `SELECT raw, source_modified_at AS modified FROM vouchers WHERE source = 'carecloud' AND source_id = $1`,
      voucher.voucher_id,
    );
    const run = await h.db.syncRun.create({
      data: { source: 'carecloud', stream: 'vouchers', mode: 'incremental', status: 'running' },
    });
    const older = { ...stored!.raw, value: 1 };
    const result = await writePage(h.db, {
      source: 'carecloud',
      stream: 'vouchers',
      runId: run.id,
      rows: [
        {
          sourceId: voucher.voucher_id,
          code: voucher.code,
          customerId: voucher.customer_id,
          status: 'active',
          amount: '1',
          redeemedAmount: null,
          validFrom: null,
          validTo: null,
          appliedAt: null,
          sourceCreatedAt: null,
          sourceModifiedAt: new Date(stored!.modified.getTime() - 60_000).toISOString(),
          isDeleted: false,
          voucherType: null,
          description: null,
          storeId: null,
          rewardId: null,
          rewardName: null,
          raw: older,
        },
      ],
      rejects: [],
    });
    expect(result).toEqual({ inserted: 0, updated: 0, unchanged: 1, rejected: 0 });
    expect(await counts()).toEqual(before);
  });

  it('Cin7 redemptions between two syncs are redeemed events, observed between the two, with the amount redeemed', async () => {
    await h.sync('cin7', 'full');
    const [firstRun] = await h.db.$queryRawUnsafe<{ started_at: Date; finished_at: Date }[]>(
      `SELECT started_at, finished_at FROM sync_runs WHERE source = 'cin7' AND status = 'succeeded' ORDER BY id DESC LIMIT 1`,
    );
    const active = h.cin7.store.all().filter((v) => v.status === 'Active' && Number(v.amount) >= 10);
    const [partly, fully] = active;
    h.cin7.store.redeem(partly!.code, 4);
    h.cin7.store.redeem(fully!.code, Number(fully!.amount) - Number(fully!.redeemedAmount ?? 0));
    const before = Date.now();
    await h.sync('cin7', 'full');
    const after = Date.now();

    for (const [voucher, amount] of [
      [partly!, 4],
      [fully!, Number(fully!.amount) - Number(fully!.redeemedAmount ?? 0)],
    ] as const) {
      const redeemed = (await events('cin7', voucher.code)).filter((e) => e.event === 'redeemed');
      const latest = redeemed.at(-1)!;
      expect(latest.precision).toBe('observed');
      expect(Number(latest.amount)).toBeCloseTo(amount, 6);
      // After the first sync stored the voucher as it was (within that run), before the second saw it.
      expect(latest.observed_after!.getTime()).toBeGreaterThanOrEqual(firstRun!.started_at.getTime());
      expect(latest.observed_after!.getTime()).toBeLessThanOrEqual(firstRun!.finished_at.getTime());
      expect(latest.observed_before!.getTime()).toBeGreaterThanOrEqual(before - 1000);
      expect(latest.observed_before!.getTime()).toBeLessThanOrEqual(after);
      expect(latest.event_at.getTime()).toBe(latest.observed_before!.getTime());
    }
    const fullyVersions = await versions('cin7', fully!.code);
    expect(fullyVersions.at(-1)).toMatchObject({ kind: 'updated', status: 'inactive', is_current: true });
    expect(fullyVersions.at(-1)!.changed_fields).toEqual(['status', 'redeemed_amount']);
  });

  it('a hard-deleted voucher ends its history with deleted', async () => {
    await h.sync('cin7', 'full');
    const gone = h.cin7.store.all()[3]!;
    h.cin7.store.hardDelete(gone.code);
    await h.sync('cin7', 'full');
    const chain = await versions('cin7', gone.code);
    expect(chain.map((v) => v.kind)).toEqual(['inserted', 'deleted']);
    expect(chain.at(-1)).toMatchObject({ status: 'deleted', is_current: true, version_from_basis: 'observed' });
    expectContiguous(chain);
    expect((await events('cin7', gone.code)).at(-1)).toMatchObject({ event: 'deleted', precision: 'observed' });
  });

  it('answers "as they stood" at a point in time from the versions', async () => {
    await h.sync('carecloud', 'full');
    const target = h.careCloud.store.all().find((v) => v.state === 1 && !v.applied_date)!;
    const [clock] = await h.db.$queryRawUnsafe<{ now: Date }[]>('SELECT clock_timestamp() AS now');
    const between = clock!.now;
    // CareCloud's last_change has whole seconds: the change must come in a later second to be dated after `between`.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    h.careCloud.store.update(target.voucher_id, { value: target.value + 5 });
    await h.sync('carecloud');
    const asOf = (at: Date) =>
      h.db.$queryRawUnsafe<{ amount: string }[]>(
        `SELECT amount::text FROM reporting.voucher_history
          WHERE source_id = $1 AND version_from <= $2::timestamptz AND (version_to IS NULL OR version_to > $2::timestamptz)`,
        target.voucher_id,
        at.toISOString(),
      );
    expect(await asOf(between)).toEqual([{ amount: String(target.value) }]);
    expect(await asOf(new Date())).toEqual([{ amount: String(target.value + 5) }]);
  });

  it('cuts the daily facts in REPORTING_TIMEZONE, and books an open value out when its valid_to passes', async () => {
    // Issued at 20:00 UTC on 5 January: that day in UTC, the 6th in Kolkata (+05:30). Valid until the 10th.
    await h.db.$executeRawUnsafe(
      `INSERT INTO vouchers (source, source_id, status, amount, redeemed_amount, valid_to, source_created_at,
                             source_modified_at, version_from, version_from_basis, is_deleted, raw, content_hash)
       VALUES ('carecloud', 'tz-1', 'active', 40, NULL, '2026-01-10T12:00:00Z', '2026-01-05T20:00:00Z',
               '2026-01-05T20:00:00Z', '2026-01-05T20:00:00Z', 'source', false, '{}', '\\x00')`,
    );
    const day = (d: string) =>
      h.db.$queryRawUnsafe<{ issued_count: bigint; vouchers: bigint; open_balance: string }[]>(
        `SELECT issued_count, vouchers, open_balance::text FROM reporting.voucher_daily
          WHERE source = 'carecloud' AND status = 'active' AND day = $1::date`,
        d,
      );
    expect(await day('2026-01-05')).toEqual([{ issued_count: 1n, vouchers: 1n, open_balance: '40' }]);
    expect(await day('2026-01-09')).toEqual([{ issued_count: 0n, vouchers: 1n, open_balance: '40' }]);
    expect(await day('2026-01-10')).toEqual([{ issued_count: 0n, vouchers: 1n, open_balance: '0' }]);
    await saveReportingTimezone(h.db, 'Asia/Kolkata');
    expect(await day('2026-01-05')).toEqual([]);
    expect(await day('2026-01-06')).toEqual([{ issued_count: 1n, vouchers: 1n, open_balance: '40' }]);
  });

  it('retention prunes closed versions in batches; current versions, events and daily facts stay', async () => {
    await h.sync('cin7', 'full');
    for (const voucher of h.cin7.store
      .all()
      .filter((v) => v.status === 'Active')
      .slice(0, 7))
      h.cin7.store.redeem(voucher.code, 1);
    await h.sync('cin7', 'full');
    const before = await counts();
    // Not folded yet: the fold still reads the versions the redemptions closed, so they stay.
    expect(before.pending).toBeGreaterThan(0);
    expect(await pruneHistory(h.db, { endedBefore: new Date(Date.now() + 60_000) })).toBe(0);
    expect(await counts()).toEqual(before);
    expect(await h.db.$queryRawUnsafe<unknown[]>('SELECT * FROM reporting.voucher_daily ORDER BY 1, 2, 3')).toEqual(
      await (async () => {
        await foldDailyChanges(h.db);
        return h.db.$queryRawUnsafe<unknown[]>('SELECT * FROM reporting.voucher_daily ORDER BY 1, 2, 3');
      })(),
    );
    await foldDailyChanges(h.db);
    const compacted = await counts();
    expect(compacted.versions).toBe(before.versions);
    const daily = await h.db.$queryRawUnsafe<unknown[]>('SELECT * FROM reporting.voucher_daily ORDER BY 1, 2, 3');
    const deleted = await pruneHistory(h.db, { endedBefore: new Date(Date.now() + 60_000), batchSize: 3 });
    expect(deleted).toBe(7);
    const after = await counts();
    expect(after).toEqual({ ...compacted, versions: before.versions - 7 });
    expect(await h.db.$queryRawUnsafe<unknown[]>('SELECT * FROM reporting.voucher_daily ORDER BY 1, 2, 3')).toEqual(
      daily,
    );
    expect((await versions('cin7')).every((v) => v.is_current)).toBe(true);
    // Nothing ended before a time already past the history's start.
    expect(await pruneHistory(h.db, { endedBefore: new Date(0) })).toBe(0);
  });
});
