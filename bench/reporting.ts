/**
 * The reporting schema at size: N vouchers (1,000,000 by default) issued over two years, written through the
 * history triggers in pages as a first load would write them, a share of them redeemed afterwards; then the
 * dashboard queries a BI tool sends, each timed (median of five) against the one second. The vouchers are
 * made by SQL rather than the fakes: what is measured is the reporting views, not the sync.
 */
import pg from 'pg';
import { createDatabase } from './infra.ts';
import type { Check } from './report.ts';

export interface ReportingOptions {
  vouchers: number;
}

/** The queries, as a dashboard over two years asks them. */
const QUERIES: { name: string; sql: string }[] = [
  {
    name: 'two years of daily issued, redeemed and open balance, per source',
    sql: `SELECT day, source, sum(issued_amount), sum(redeemed_amount), sum(open_balance) FILTER (WHERE status = 'active')
            FROM reporting.voucher_daily WHERE day >= current_date - 730 GROUP BY day, source ORDER BY day, source`,
  },
  {
    name: 'open liability at the end of last quarter',
    sql: `SELECT source, vouchers, open_balance FROM reporting.voucher_daily
           WHERE status = 'active' AND day = (date_trunc('quarter', now()) - interval '1 day')::date`,
  },
  {
    name: 'redeemed per month over two years (events)',
    sql: `SELECT date_trunc('month', event_at), source, sum(amount) FROM reporting.voucher_events
           WHERE event = 'redeemed' AND event_at >= now() - interval '2 years' GROUP BY 1, 2 ORDER BY 1, 2`,
  },
];

const PAGE = 1000;

export async function runReporting(
  options: ReportingOptions,
  log: (line: string) => void,
): Promise<{ checks: Check[] }> {
  const database = await createDatabase('bench_reporting');
  const client = new pg.Client({ connectionString: database.url });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const started = performance.now();
    // Pages of a first load: vouchers created over the last two years, half of them expiring a year after.
    for (let low = 0; low < options.vouchers; low += PAGE) {
      await client.query(
        `INSERT INTO vouchers (source, source_id, code, customer_id, status, amount, redeemed_amount, valid_to,
                               source_created_at, source_modified_at, version_from, version_from_basis, is_deleted,
                               raw, content_hash)
         SELECT CASE WHEN i % 2 = 0 THEN 'carecloud' ELSE 'cin7' END, 'v' || i, 'C' || i, 'cust' || (i % 50000),
                'active', 10 + i % 90, CASE WHEN i % 2 = 1 THEN 0 END, created + interval '365 days', created,
                CASE WHEN i % 2 = 0 THEN created END, created, 'source', false, '{}', '\\x00'
           FROM generate_series($1::int, $2::int) AS i
          CROSS JOIN LATERAL (SELECT now() - (i % 730) * interval '1 day' - (i % 1440) * interval '1 minute' AS created) c`,
        [low, Math.min(low + PAGE, options.vouchers) - 1],
      );
    }
    const loaded = (performance.now() - started) / 1000;
    log(`reporting: ${options.vouchers} vouchers written through the history triggers in ${loaded.toFixed(0)} s`);
    // A fifth of them redeemed since (Cin7 partly, CareCloud applied), page by page as a reconciliation would.
    for (let low = 0; low < options.vouchers; low += 5 * PAGE) {
      await client.query(
        `UPDATE vouchers SET redeemed_amount = CASE WHEN source = 'cin7' THEN amount / 2 END,
                             applied_at = CASE WHEN source = 'carecloud' THEN now() - interval '3 days' END,
                             status = CASE WHEN source = 'carecloud' THEN 'inactive' ELSE status END
          WHERE id % 5 = 0 AND id >= $1 AND id < $2`,
        [low, low + 5 * PAGE],
      );
    }
    // What a scheduler does every minute, here once for the whole load: its cost is the fold's, off the sync's path.
    const folding = performance.now();
    const folded = await client.query<{ versions: string }>('SELECT fold_voucher_daily_changes() AS versions');
    log(
      `reporting: the fold added ${folded.rows[0]!.versions} versions to the daily facts in ${((performance.now() - folding) / 1000).toFixed(1)} s`,
    );
    await client.query('VACUUM ANALYZE');
    const sizes = await client.query<{ versions: string; events: string; changes: string }>(
      `SELECT (SELECT count(*) FROM voucher_versions) AS versions, (SELECT count(*) FROM voucher_events) AS events,
              (SELECT count(*) FROM voucher_daily_buckets) AS changes`,
    );
    const s = sizes.rows[0]!;
    log(`reporting: ${s.versions} versions, ${s.events} events, ${s.changes} daily buckets`);
    const checks: Check[] = [];
    for (const query of QUERIES) {
      const times: number[] = [];
      for (let i = 0; i < 5; i++) {
        const t = performance.now();
        await client.query(query.sql);
        times.push(performance.now() - t);
      }
      const median = [...times].sort((a, b) => a - b)[2]!;
      log(`reporting: ${query.name}: ${times.map((t) => t.toFixed(0)).join(', ')} ms`);
      checks.push({
        part: 'reporting',
        metric: `${query.name}, ${options.vouchers.toLocaleString('en-US')} vouchers (median of 5)`,
        value: `${median.toFixed(0)} ms`,
        target: '< 1000 ms',
        met: median < 1000,
      });
    }
    return { checks };
  } finally {
    await client.end();
    await database.drop();
  }
}
