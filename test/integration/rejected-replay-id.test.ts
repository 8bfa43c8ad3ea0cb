/**
 * `voucher-sync rejected replay --id`: one rejected record replayed; the same one again, resolved already; and the
 * bad ids an operator may type, each one line and exit 2.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { runCommand } from '../helpers/run-command.ts';
import { createHarness, type Harness } from '../helpers/sync-harness.ts';

const CLI = 'src/cli/main.ts';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const rejectionsOf = (harness: Harness, source: string) =>
  harness.db.rejectedRecord.findMany({ where: { source }, orderBy: { id: 'asc' } });

async function rejectionWith(harness: Harness, source: string, field: string, value: unknown) {
  const all = await rejectionsOf(harness, source);
  const found = all.find((r) => (r.raw as Record<string, unknown> | null)?.[field] === value);
  if (!found) throw new Error(`no rejected record of ${source} with ${field} = ${String(value)}`);
  return found;
}

describe('rejected replay --id', () => {
  it('--id replays one record; an unknown id, or one of another source, is one line and exit 2', async () => {
    h = await createHarness({ careCloud: { count: 30 } });
    const harness = h;
    const one = harness.careCloud.store.insertMalformed('comma-number');
    harness.careCloud.store.insertMalformed('comma-number');
    await harness.sync('carecloud');
    const target = await rejectionWith(harness, 'carecloud', 'voucher_id', one.voucher_id);
    harness.careCloud.store.update(String(one.voucher_id), { value: 3 });
    harness.careCloud.stats.reset();

    const outcome = await runCommand(CLI, ['rejected', 'replay', '--id', String(target.id)], harness.env);
    expect(outcome.code, outcome.stdout + outcome.stderr).toBe(0);
    expect(outcome.stdout).toMatch(
      /^carecloud \(run \d+\): 1 resolved, 0 failed again, 0 gone at the source, 0 cannot/,
    );
    // Only that one was read again; the other stays open.
    expect(harness.careCloud.stats.byEndpoint['GET /vouchers/{voucher_id}']).toBe(1);
    const open = await harness.db.rejectedRecord.findMany({ where: { resolvedAt: null } });
    expect(open.map((r) => r.id)).not.toContain(target.id);
    expect(open).toHaveLength(1);

    // Then, side by side: the same id again (resolved already), and two bad ones (a malformed id: rejected-list).
    const bad = [
      ['--id', '999999'],
      ['--id', String(target.id), '--source', 'cin7'],
    ];
    const [again, ...answers] = await Promise.all(
      [['--id', String(target.id)], ...bad].map((args) =>
        runCommand(CLI, ['rejected', 'replay', ...args], harness.env),
      ),
    );
    expect(again).toMatchObject({ code: 0, stderr: '' });
    expect(again!.stdout).toMatch(/resolved already \(replayed by run \d+\); nothing to replay/);
    expect(answers.map((a) => [a.code, a.stderr.trim().split('\n').length, a.stdout])).toEqual(
      bad.map(() => [2, 1, '']),
    );
    expect(answers[0]!.stderr).toMatch(/^error: there is no rejected record 999999/);
    expect(answers[1]!.stderr).toMatch(/is of carecloud, not cin7/);
    expect(await harness.db.syncRun.count({ where: { mode: 'replay' } })).toBe(1);
  }, 90_000);
});
