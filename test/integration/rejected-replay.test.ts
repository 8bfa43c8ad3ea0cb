/**
 * `voucher-sync rejected replay` and `rejected list` as an operator runs them: a process of its own against the real
 * Postgres, Redis and the fake servers, after a sync left rejected records behind and the source changed them.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { runCommand } from '../helpers/run-command.ts';
import { createHarness, type Harness } from '../helpers/sync-harness.ts';
import { readStatus } from '../../src/status/read-status.ts';

const CLI = 'src/cli/main.ts';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const rejectionsOf = (harness: Harness, source: string) =>
  harness.db.rejectedRecord.findMany({ where: { source }, orderBy: { id: 'asc' } });

/** The rejected record whose payload has this field value (the payload is the record as served). */
async function rejectionWith(harness: Harness, source: string, field: string, value: unknown) {
  const all = await rejectionsOf(harness, source);
  const found = all.find((r) => (r.raw as Record<string, unknown> | null)?.[field] === value);
  if (!found) throw new Error(`no rejected record of ${source} with ${field} = ${String(value)}`);
  return found;
}

describe('rejected replay', () => {
  it('CareCloud: stores and resolves what passes now, keeps the new reason of what fails again, marks the gone', async () => {
    h = await createHarness({ careCloud: { count: 60 } });
    const harness = h;
    const store = harness.careCloud.store;
    const fixed = store.insertMalformed('comma-number');
    const failsAgain = store.insertMalformed('wrong-type');
    const unchanged = store.insertMalformed('zero-date');
    const gone = store.insertMalformed('comma-number');
    const noId = store.insertMalformed('missing-id');
    await harness.sync('carecloud');
    expect(await harness.db.rejectedRecord.count()).toBe(5);
    const before = await rejectionWith(harness, 'carecloud', 'voucher_id', failsAgain.voucher_id);

    // The source corrects one, changes another into a new mistake, and deletes a third.
    store.update(String(fixed.voucher_id), { value: 12.5 });
    // A number written the way people write it, as the malformed fixtures do.
    store.update(String(failsAgain.voucher_id), { state: 1, value: '7,5' as unknown as number });
    expect(store.hardDelete(String(gone.voucher_id))).toBe(true);
    const codes: string[] = [];
    store.onListRequest(({ query }) => void codes.push(query.get('code') ?? '(none)'));
    harness.careCloud.stats.reset();

    const outcome = await runCommand(CLI, ['rejected', 'replay', '--source', 'carecloud'], harness.env);
    expect(outcome.code, outcome.stdout + outcome.stderr).toBe(0);
    const run = await harness.db.syncRun.findFirstOrThrow({ where: { mode: 'replay' } });
    expect(outcome.stdout.trim()).toBe(
      `carecloud (run ${run.id}): 1 resolved, 3 failed again, 1 gone at the source, 0 cannot be fetched again`,
    );

    // What the fake was asked: one voucher by id for each of the four with an id, the one without by its code.
    expect(harness.careCloud.stats.byEndpoint['GET /vouchers/{voucher_id}']).toBe(4);
    expect(harness.careCloud.stats.byEndpoint['GET /vouchers']).toBe(1);
    expect(codes).toEqual([noId.code]);

    // The ledger: one replay row, its counters; no watermark moved.
    expect(run).toMatchObject({ source: 'carecloud', status: 'succeeded', fetched: 4, inserted: 1, rejected: 3 });
    expect(run.apiCalls).toBeGreaterThanOrEqual(5);
    expect(run.watermarkAfter).toBeNull();

    // The corrected voucher is stored by the replay, its rejection kept and resolved by it.
    const voucher = await harness.db.voucher.findUniqueOrThrow({
      where: { source_sourceId: { source: 'carecloud', sourceId: String(fixed.voucher_id) } },
    });
    expect(voucher.amount?.toString()).toBe('12.5');
    expect(voucher.lastRunId).toBe(run.id);
    expect(await rejectionWith(harness, 'carecloud', 'voucher_id', fixed.voucher_id)).toMatchObject({
      resolution: 'replayed',
      resolvedByRunId: run.id,
      resolvedAt: expect.any(Date),
    });
    expect(await rejectionWith(harness, 'carecloud', 'voucher_id', gone.voucher_id)).toMatchObject({
      resolution: 'gone',
      resolvedByRunId: run.id,
    });
    // Failed again: open, the new reason, seen once more, by the replay.
    const again = await rejectionWith(harness, 'carecloud', 'voucher_id', failsAgain.voucher_id);
    expect(again).toMatchObject({ id: before.id, resolvedAt: null, timesSeen: 2, runId: run.id });
    expect(before.reason).toMatch(/state/);
    expect(again.reason).toMatch(/value/);
    expect(again.reason).not.toBe(before.reason);
    for (const payload of [unchanged.voucher_id, undefined]) {
      const r = await rejectionWith(harness, 'carecloud', 'voucher_id', payload);
      expect(r).toMatchObject({ resolvedAt: null, timesSeen: 2, runId: run.id });
    }
    expect(await harness.db.rejectedRecord.count()).toBe(5);

    // status counts the open ones only.
    const report = await readStatus({ db: harness.db, redis: harness.redis, config: harness.config });
    expect(report.sources.find((s) => s.source === 'carecloud')?.rejectedOpen).toBe(3);

    // A second replay reads only what is still open.
    harness.careCloud.stats.reset();
    const second = await runCommand(CLI, ['rejected', 'replay'], harness.env);
    expect(second.code).toBe(0);
    expect(second.stdout).toMatch(/^carecloud \(run \d+\): 0 resolved, 3 failed again, 0 gone at the source/m);
    expect(harness.careCloud.stats.byEndpoint['GET /vouchers/{voucher_id}']).toBe(2);
  }, 90_000);

  it('Cin7: by code; one without a code cannot be fetched again and the command says which', async () => {
    h = await createHarness({ cin7: { count: 60 } });
    const harness = h;
    const store = harness.cin7.store;
    const fixed = store.insertMalformed('comma-number');
    store.insertMalformed('zero-date');
    store.insertMalformed('missing-code');
    await harness.sync('cin7');
    expect(await harness.db.rejectedRecord.count()).toBe(3);
    const noCode = await rejectionWith(harness, 'cin7', 'code', undefined);
    store.update(String(fixed.code), { amount: 25 });
    harness.cin7.stats.reset();

    const outcome = await runCommand(CLI, ['rejected', 'replay', '--source', 'cin7'], harness.env);
    expect(outcome.code, outcome.stdout + outcome.stderr).toBe(0);
    const run = await harness.db.syncRun.findFirstOrThrow({ where: { mode: 'replay' } });
    expect(outcome.stdout.trim()).toBe(
      `cin7 (run ${run.id}): 1 resolved, 1 failed again, 0 gone at the source, 1 cannot be fetched again ` +
        `(neither id nor code: rejected record ${noCode.id})`,
    );
    // Two look-ups by code, nothing for the record without one.
    expect(harness.cin7.stats.byEndpoint['GET /v1/Voucher']).toBe(2);
    const voucher = await harness.db.voucher.findUniqueOrThrow({
      where: { source_sourceId: { source: 'cin7', sourceId: String(fixed.code) } },
    });
    expect(voucher.amount?.toString()).toBe('25');
    expect(await harness.db.rejectedRecord.findUniqueOrThrow({ where: { id: noCode.id } })).toMatchObject({
      resolvedAt: null,
      timesSeen: 1,
    });
  }, 90_000);
});
