/**
 * `voucher-sync sync --source carecloud --customer ID…` against the real Postgres, Redis and fake CareCloud: what a
 * customer run stores, deletes and records, as an operator runs it (a process of its own), and the rule that lets it go
 * beside the source's main run — a lock of its own, neither run abandons the other, both write newer-wins. The
 * command's refusals and its Ctrl-C: customer-sync-cli.test.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { acquireSourceLock, type SourceLock } from '../../src/db/source-lock.ts';
import { isServiceCode } from '../../src/fake/carecloud-data.ts';
import { readStatus } from '../../src/status/read-status.ts';
import { runCustomerSync } from '../../src/sync/customer-sync.ts';
import {
  CLI,
  CUSTOMER_LIST,
  customerRuns,
  customerWith,
  MAIN_LIST,
  stored,
  syncedHarness,
  watchLists,
} from '../helpers/customer-runs.ts';
import { runCommand } from '../helpers/run-command.ts';
import type { Harness } from '../helpers/sync-harness.ts';

let h: Harness | undefined;
const locks: SourceLock[] = [];

afterEach(async () => {
  for (const lock of locks.splice(0)) await lock.release();
  await h?.close();
  h = undefined;
});

const synced = async (env?: Record<string, string>) => (h = await syncedHarness(env));

/** The stream state once the main run has stopped changing it (it is held at a list request). */
async function settledState(harness: Harness): Promise<string> {
  const read = async () =>
    JSON.stringify(await harness.db.syncState.findMany({ where: { source: 'carecloud' } }), (_, value: unknown) =>
      typeof value === 'bigint' ? String(value) : value,
    );
  let last = await read();
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 300));
    const now = await read();
    if (now === last) return now;
    last = now;
  }
}

describe('sync --customer', () => {
  it('re-reads a customer: stores what changed, marks deleted what is gone once confirmed by id, moves no watermark', async () => {
    const harness = await synced();
    const { customerId, vouchers } = customerWith(harness, 3);
    const [changed, hardDeleted, softDeleted] = vouchers;
    const { store } = harness.careCloud;
    store.update(changed!.voucher_id, { note: 'changed for the customer run' });
    store.hardDelete(hardDeleted!.voucher_id);
    store.softDelete(softDeleted!.voucher_id);
    const added = store.insert({ customer_id: customerId, note: 'new for the customer' });
    // Another customer's change is not this run's to read.
    const other = store.all().find((v) => v.customer_id !== customerId && v.state !== 0)!;
    store.update(other.voucher_id, { note: 'changed elsewhere' });
    const stateBefore = await harness.db.syncState.findMany({ where: { source: 'carecloud' } });
    const lists = watchLists(harness);
    harness.careCloud.stats.reset();

    const outcome = await runCommand(CLI, ['sync', '--source', 'carecloud', '--customer', customerId], harness.env);

    expect(outcome.code, outcome.stderr).toBe(0);
    expect(outcome.stdout).toContain(`customer ${customerId}: `);
    expect((await stored(harness, changed!.voucher_id)).raw).toEqual(store.get(changed!.voucher_id));
    expect(await stored(harness, hardDeleted!.voucher_id)).toMatchObject({ isDeleted: true, status: 'deleted' });
    expect(await stored(harness, softDeleted!.voucher_id)).toMatchObject({ isDeleted: true, status: 'deleted' });
    expect((await stored(harness, added.voucher_id)).raw).toEqual(added);
    expect((await stored(harness, other.voucher_id)).raw).toEqual(other);
    // Every other stored voucher of the customer is still live.
    for (const v of vouchers.slice(3)) expect(await stored(harness, v.voucher_id)).toMatchObject({ isDeleted: false });

    const [run] = await customerRuns(harness);
    expect(run).toMatchObject({
      mode: 'customer',
      status: 'succeeded',
      inserted: 1,
      updated: 2, // the change and the soft deletion
      deleted: 1, // the voucher gone from CareCloud
      watermarkBefore: null,
      watermarkAfter: null,
    });
    expect(run!.fetched).toBe(vouchers.length); // listed: all but the hard-deleted one, plus the new one
    // No watermark, no saved progress moved; no main list read.
    expect(await harness.db.syncState.findMany({ where: { source: 'carecloud' } })).toEqual(stateBefore);
    expect(lists.customers).toEqual([customerId]);
    expect(harness.careCloud.stats.byEndpoint).toMatchObject({
      'GET /customers/{customer_id}/vouchers': 1,
      'GET /vouchers/{voucher_id}': 1, // the confirmation of the one voucher the list no longer held
    });
    expect(harness.careCloud.stats.byEndpoint['GET /vouchers']).toBeUndefined();
  });

  it('an unknown customer (404): says so, exit 1, nothing of theirs deleted; the source is not failing for it', async () => {
    const harness = await synced();
    const { store } = harness.careCloud;
    // A customer CareCloud knows only through its one voucher: stored, then gone with it, the customer unknown.
    const ghost = store.insert({ customer_id: 'ghost-customer-1' });
    await harness.sync('carecloud');
    store.hardDelete(ghost.voucher_id);
    const { customerId, vouchers } = customerWith(harness, 1);
    store.hardDelete(vouchers[0]!.voucher_id);

    const outcome = await runCommand(
      CLI,
      ['sync', '--source', 'carecloud', '--customer', 'ghost-customer-1', '--customer', customerId],
      harness.env,
    );

    expect(outcome.code).toBe(1);
    expect(outcome.stderr).toMatch(/^error: carecloud has no customer ghost-customer-1 \(404\)/m);
    expect(outcome.stdout).toContain('customer ghost-customer-1: unknown to carecloud (404), nothing marked deleted');
    expect(await stored(harness, ghost.voucher_id)).toMatchObject({ isDeleted: false });
    // The known customer's list was read and confirmed all the same.
    expect(await stored(harness, vouchers[0]!.voucher_id)).toMatchObject({ isDeleted: true });
    const [run] = await customerRuns(harness);
    expect(run).toMatchObject({ status: 'failed', deleted: 1 });
    expect(run!.error).toContain('ghost-customer-1');
    const report = await readStatus({ db: harness.db, redis: harness.redis, config: harness.config });
    expect(report.sources.find((s) => s.source === 'carecloud')).toMatchObject({
      state: 'idle',
      consecutiveFailures: 0,
    });
  });

  // Its commands take seconds each to start on a busy machine: more time than the default, not more work.
  it(
    'goes beside a long main run: neither waits for, abandons or loses a change of the other',
    { timeout: 120_000 },
    async () => {
      // The main run's held request must outlast the command on a busy machine, not time out and be sent again.
      const harness = await synced({ HTTP_READ_TIMEOUT: '5m', HTTP_REQUEST_TIMEOUT: '5m' });
      const { customerId, vouchers } = customerWith(harness, 2);
      const { store } = harness.careCloud;
      store.update(vouchers[0]!.voucher_id, { note: 'changed while the reconciliation runs' });
      store.hardDelete(vouchers[1]!.voucher_id);
      const elsewhere = store.all().find((v) => v.customer_id !== customerId && v.state !== 0)!;
      store.update(elsewhere.voucher_id, { note: 'for the main run to bring' });
      // The reconciliation holds the source's main lock, as a worker does, and is held at its third page.
      locks.push(await acquireSourceLock(harness.databaseUrl, 'carecloud'));
      const lists = watchLists(harness, (info) => MAIN_LIST.test(info.path) && info.n >= 3);
      const main = harness.sync('carecloud', 'full');
      main.catch(() => undefined); // awaited below; a failed test closes the harness under it
      await lists.holding;
      const stateBefore = await settledState(harness);

      const outcome = await runCommand(CLI, ['sync', '--source', 'carecloud', '--customer', customerId], harness.env);

      expect(outcome.code, outcome.stderr).toBe(0);
      const mainRow = await harness.db.syncRun.findFirstOrThrow({ where: { source: 'carecloud', mode: 'full' } });
      expect(mainRow.status).toBe('running'); // not abandoned by the customer run, and still going
      // The reconciliation's watermark and saved place, untouched.
      expect(await settledState(harness)).toBe(stateBefore);
      expect(await stored(harness, vouchers[1]!.voucher_id)).toMatchObject({ isDeleted: true });

      lists.release();
      const result = await main;
      expect(await harness.db.syncRun.findUniqueOrThrow({ where: { id: result.runId } })).toMatchObject({
        status: 'succeeded',
      });
      expect((await customerRuns(harness))[0]).toMatchObject({ status: 'succeeded' });
      // Every voucher as CareCloud holds it now: the customer run's changes and the main run's, none lost.
      const rows = new Map((await harness.vouchers('carecloud')).map((r) => [r.sourceId, r]));
      const truth = store.all().filter((v) => !isServiceCode(v.code));
      for (const v of truth) expect(rows.get(v.voucher_id)?.raw, v.voucher_id).toEqual(v);
      const gone = [...rows.values()].filter((r) => !truth.some((v) => v.voucher_id === r.sourceId));
      expect(gone.map((r) => [r.sourceId, r.isDeleted])).toEqual([[vouchers[1]!.voucher_id, true]]);
    },
  );

  it('a main run that starts while a customer run reads leaves it running, and an older read never wins', async () => {
    const harness = await synced();
    const { customerId, vouchers } = customerWith(harness, 2);
    const { store } = harness.careCloud;
    // The main run stores a newer version; CareCloud then answers the customer run with an older one (a stale read).
    const first = vouchers[0]!;
    const newer = store.update(first.voucher_id, { note: 'newer' });
    await harness.sync('carecloud');
    store.update(first.voucher_id, { note: 'older', last_change: first.last_change });
    const lists = watchLists(harness, (info) => CUSTOMER_LIST.test(info.path));
    const runtime = harness.runtime('carecloud');
    const customer = runCustomerSync({
      source: 'carecloud',
      stream: runtime.streams[0]!,
      client: runtime.client,
      customerIds: [customerId],
      db: harness.db,
      logger: harness.logger,
      confirmMax: 100,
    });
    await lists.holding;
    const [running] = await customerRuns(harness);
    expect(running!.status).toBe('running');

    // A main run starts and ends meanwhile; it marks left-over main runs abandoned, never this one.
    await harness.sync('carecloud');
    expect((await customerRuns(harness))[0]!.status).toBe('running');
    const later = store.update(vouchers[1]!.voucher_id, { note: 'changed for the customer run' });

    lists.release();
    const result = await customer;
    expect(result.status).toBe('succeeded');
    expect((await customerRuns(harness))[0]).toMatchObject({
      status: 'succeeded',
      updated: 1,
      unchanged: vouchers.length - 1,
    });
    expect((await stored(harness, first.voucher_id)).raw).toEqual(newer);
    expect((await stored(harness, vouchers[1]!.voucher_id)).raw).toEqual(later);
  });
});
