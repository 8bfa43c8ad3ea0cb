/**
 * The five BI questions of docs/reporting.md (the README links them), run as they are written there against the fakes, each answer checked against
 * one computed another way: in JavaScript from the plain `vouchers` table, which the history does not touch.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHarness, type Harness } from '../helpers/sync-harness.ts';

const QUESTIONS = readFileSync(new URL('../../docs/reporting.md', import.meta.url), 'utf8');

/** The SQL block that follows the bold title `title` in docs/reporting.md. */
function question(title: string): string {
  const at = QUESTIONS.indexOf(`**${title}**`);
  if (at < 0) throw new Error(`docs/reporting.md has no question "${title}"`);
  const block = /```sql\n([\s\S]*?)```/.exec(QUESTIONS.slice(at));
  if (!block) throw new Error(`docs/reporting.md's question "${title}" has no SQL block`);
  return block[1]!;
}

let h: Harness;
type Row = Awaited<ReturnType<Harness['vouchers']>>[number];
let rows: Row[];
let now: Date;
beforeAll(async () => {
  h = await createHarness({ careCloud: { count: 1500 }, cin7: { count: 600 } });
  await h.sync('carecloud', 'full');
  await h.sync('cin7', 'full');
  // Redemptions between two reconciliations: observed, dated this month.
  for (const voucher of h.cin7.store
    .all()
    .filter((v) => v.status === 'Active')
    .slice(0, 25))
    h.cin7.store.redeem(voucher.code, 1);
  await h.sync('cin7', 'full');
  rows = [...(await h.vouchers('carecloud')), ...(await h.vouchers('cin7'))];
  now = new Date();
}, 120_000);
afterAll(async () => {
  await h?.close();
});

const num = (value: unknown) => Math.round(Number(value) * 10_000) / 10_000;
const open = (r: Row) => Number(r.amount ?? 0) - Number(r.redeemedAmount ?? 0);
const sum = (values: number[]) => num(values.reduce((a, b) => a + b, 0));

async function ask<T>(title: string): Promise<T[]> {
  return h.db.$queryRawUnsafe<T[]>(question(title));
}

async function bounds(sql: string): Promise<{ from: Date; to: Date }> {
  const [row] = await h.db.$queryRawUnsafe<{ from: Date; to: Date }[]>(sql);
  return row!;
}

describe('the BI questions of docs/reporting.md', () => {
  it('the history is cut in UTC days here (the database session and REPORTING_TIMEZONE agree)', async () => {
    const [zone] = await h.db.$queryRawUnsafe<{ tz: string; setting: string }[]>(
      `SELECT current_setting('TimeZone') AS tz, (SELECT timezone FROM reporting_settings) AS setting`,
    );
    expect(zone!.setting).toBe('UTC');
    expect(['UTC', 'Etc/UTC', 'GMT', 'Etc/GMT']).toContain(zone!.tz);
  });

  it('redeemed last month, by source', async () => {
    const month = await bounds(
      `SELECT date_trunc('month', now() - interval '1 month') AS "from", date_trunc('month', now()) AS "to"`,
    );
    // CareCloud's redemptions are dated by applied_date; Cin7's are observed now, so none fall last month.
    const redeemed = rows.filter(
      (r) => r.source === 'carecloud' && r.appliedAt && r.appliedAt >= month.from && r.appliedAt < month.to,
    );
    expect(redeemed.length).toBeGreaterThan(0);
    const answer = await ask<{ source: string; redemptions: bigint; redeemed: string }>(
      'Redeemed last month, by source',
    );
    expect(answer.map((a) => ({ ...a, redemptions: Number(a.redemptions), redeemed: num(a.redeemed) }))).toEqual([
      { source: 'carecloud', redemptions: redeemed.length, redeemed: sum(redeemed.map((r) => Number(r.amount))) },
    ]);
  });

  it('open liability at the end of last quarter', async () => {
    const { to: dayEnd } = await bounds(`SELECT now() AS "from", date_trunc('quarter', now()) AS "to"`);
    // What was open when the quarter ended, as far back as the history knows: a CareCloud voucher's version starts
    // at its last_change, so one unchanged since before the quarter's end counts, unless it had expired by then.
    // Cin7's versions start at the first sync: nothing is known of its quarter.
    const known = rows.filter(
      (r) =>
        r.source === 'carecloud' &&
        r.status === 'active' &&
        r.appliedAt === null &&
        r.sourceModifiedAt !== null &&
        r.sourceModifiedAt < dayEnd &&
        (r.validTo === null || r.validTo >= dayEnd),
    );
    expect(known.length).toBeGreaterThan(0);
    const answer = await ask<{ source: string; vouchers: bigint; open_balance: string }>(
      'Open liability at the end of last quarter',
    );
    const bySource = Object.fromEntries(answer.map((a) => [a.source, a]));
    expect(num(bySource.carecloud?.open_balance)).toBe(sum(known.map(open)));
    // Every active CareCloud voucher unchanged since then counts, expired or not: the balance leaves at valid_to.
    const active = rows.filter(
      (r) =>
        r.source === 'carecloud' && r.status === 'active' && r.sourceModifiedAt !== null && r.sourceModifiedAt < dayEnd,
    );
    expect(Number(bySource.carecloud?.vouchers)).toBe(active.length);
    expect(num(bySource.cin7?.open_balance ?? 0)).toBe(0);
  });

  it('redemption rate of each campaign', async () => {
    const live = rows.filter((r) => r.source === 'carecloud' && r.status !== 'deleted');
    const names = [...new Set(live.map((r) => r.rewardName))].sort((a, b) => String(a).localeCompare(String(b)));
    expect(names.length).toBeGreaterThan(1);
    const answer = await ask<{ reward_name: string | null; issued: bigint; redeemed: bigint; redeemed_pct: string }>(
      'Redemption rate of each campaign (CareCloud reward)',
    );
    const expected = new Map(
      names.map((name) => {
        const of = live.filter((r) => r.rewardName === name);
        const used = of.filter((r) => r.appliedAt !== null).length;
        return [name, { issued: of.length, redeemed: used, pct: Math.round((1000 * used) / of.length) / 10 }];
      }),
    );
    expect(answer).toHaveLength(expected.size);
    for (const a of answer)
      expect({ issued: Number(a.issued), redeemed: Number(a.redeemed), pct: Number(a.redeemed_pct) }).toEqual(
        expected.get(a.reward_name),
      );
  });

  it('expiring in the next 30 days, with the value left', async () => {
    const until = new Date(now.getTime() + 30 * 86_400_000);
    const expiring = (source: string) =>
      rows.filter(
        (r) =>
          r.source === source &&
          r.status === 'active' &&
          r.appliedAt === null &&
          r.validTo !== null &&
          r.validTo >= now &&
          r.validTo < until,
      );
    const answer = await ask<{ source: string; vouchers: bigint; value_left: string }>(
      'Expiring in the next 30 days, with the value left',
    );
    const expected = ['carecloud', 'cin7']
      .map((source) => ({ source, vouchers: expiring(source).length, value_left: sum(expiring(source).map(open)) }))
      .filter((e) => e.vouchers > 0);
    expect(expected.length).toBeGreaterThan(0);
    expect(answer.map((a) => ({ ...a, vouchers: Number(a.vouchers), value_left: num(a.value_left) }))).toEqual(
      expected,
    );
  });

  it('balance per customer', async () => {
    const balances = new Map<string, number>();
    for (const r of rows)
      if (r.status === 'active' && r.appliedAt === null && r.customerId !== null && (!r.validTo || r.validTo > now)) {
        const key = `${r.source}/${r.customerId}`;
        balances.set(key, (balances.get(key) ?? 0) + open(r));
      }
    const answer = await ask<{ source: string; customer_id: string; balance: string }>(
      'Balance per customer (the twenty largest)',
    );
    expect(answer).toHaveLength(20);
    const largest = [...balances.values()].map(num).sort((a, b) => b - a);
    expect(answer.map((a) => num(a.balance))).toEqual(largest.slice(0, 20));
    for (const a of answer) expect(num(a.balance)).toBe(num(balances.get(`${a.source}/${a.customer_id}`)));
    // Cin7's "no customer" (0) is not a customer.
    expect(answer.some((a) => a.customer_id === '0')).toBe(false);
  });
});
