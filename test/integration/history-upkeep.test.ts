import { afterEach, expect, it } from 'vitest';
import { startService } from '../../jobs/service.ts';
import { loadConfig } from '../../src/config.ts';
import { saveReportingTimezone } from '../../src/db/history.ts';
import { createHarness, type Harness } from '../helpers/sync-harness.ts';

let h: Harness;
afterEach(async () => {
  await h.close();
});

it('a scheduler stores REPORTING_TIMEZONE for the views, merges the daily changes and prunes what HISTORY_RETENTION lets go', async () => {
  h = await createHarness({ cin7: { count: 300 } });
  await h.sync('cin7', 'full');
  for (const voucher of h.cin7.store
    .all()
    .filter((v) => v.status === 'Active')
    .slice(0, 5))
    h.cin7.store.redeem(voucher.code, 1);
  await h.sync('cin7', 'full');
  // The versions closed a moment ago: dated back a day, they are past a one-hour retention.
  await h.db.$executeRawUnsafe(
    `UPDATE voucher_versions SET version_from = version_from - interval '1 day', version_to = version_to - interval '1 day'`,
  );
  const rows = async () => {
    const [r] = await h.db.$queryRawUnsafe<
      { staged: number; keys: number; days: number; versions: number; zone: string }[]
    >(
      `SELECT (SELECT count(*) FROM voucher_daily_pending)::int AS staged,
              (SELECT count(*) FROM voucher_daily_buckets)::int AS keys,
              (SELECT count(*) FROM voucher_daily_days)::int AS days,
              (SELECT count(*) FROM voucher_versions)::int AS versions,
              (SELECT days_timezone FROM reporting_settings) AS zone`,
    );
    return r!;
  };
  const [distinct] = await h.db.$queryRawUnsafe<{ keys: number }[]>(
    `SELECT count(DISTINCT (bucket, source, status))::int AS keys FROM voucher_daily_pending_changes()`,
  );
  const before = await rows();
  // Two syncs noted the versions they opened, nothing is folded yet; five redemptions closed five versions.
  expect(before).toMatchObject({ keys: 0, days: 0, versions: 5 });
  expect(before.staged).toBeGreaterThan(1);
  expect(distinct!.keys).toBeGreaterThan(0);
  const daily = await h.db.$queryRawUnsafe<unknown[]>(
    `SELECT * FROM reporting.voucher_daily WHERE status = 'active' ORDER BY day, source`,
  );

  const config = loadConfig({ ...h.env, REPORTING_TIMEZONE: 'Pacific/Auckland', HISTORY_RETENTION: '1h' });
  const service = await startService(config, h.logger, {
    workers: false,
    historyUpkeep: { compactEveryMs: 100, pruneEveryMs: 100 },
  });
  try {
    await expect.poll(async () => (await rows()).staged, { timeout: 15_000 }).toBe(0);
    expect((await rows()).keys).toBe(distinct!.keys);
    await expect.poll(async () => (await rows()).versions, { timeout: 15_000 }).toBe(0);
    expect((await rows()).zone).toBe('Pacific/Auckland');
  } finally {
    await service.stop();
  }
  // Folding changed no fact (the days are Auckland's now: cut them in UTC again to compare).
  await saveReportingTimezone(h.db, 'UTC');
  expect((await rows()).zone).toBe('UTC');
  expect(
    await h.db.$queryRawUnsafe<unknown[]>(
      `SELECT * FROM reporting.voucher_daily WHERE status = 'active' ORDER BY day, source`,
    ),
  ).toEqual(daily);
});
