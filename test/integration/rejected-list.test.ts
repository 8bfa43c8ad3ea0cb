/**
 * `voucher-sync rejected list` as an operator runs it: what it shows of the rejected records (never their payload,
 * which may hold a customer's e-mail address), open or resolved and how.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { openToReplay } from '../../src/db/rejected.ts';
import { replayRejected } from '../../src/sync/replay.ts';
import { runCommand } from '../helpers/run-command.ts';
import { createHarness, type Harness } from '../helpers/sync-harness.ts';

const CLI = 'src/cli/main.ts';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe('rejected list', () => {
  it('shows id, source, record, reason, times and state — never the payload or an e-mail address', async () => {
    h = await createHarness({ careCloud: { count: 30 }, cin7: { count: 30 } });
    const harness = h;
    const fixed = harness.cin7.store.insertMalformed('comma-number');
    harness.cin7.store.insertMalformed('wrong-type');
    harness.careCloud.store.insertMalformed('zero-date');
    await harness.sync('cin7');
    await harness.sync('carecloud');
    const rows = await harness.db.rejectedRecord.findMany();
    expect(JSON.stringify(rows.map((r) => r.raw))).toMatch(/@/); // Cin7 records carry the customer's e-mail
    // Replayed in this process (the command has tests of its own): the corrected one is resolved.
    harness.cin7.store.update(String(fixed.code), { amount: 4 });
    const runtime = harness.runtime('cin7');
    const replayed = await replayRejected({
      source: 'cin7',
      streams: runtime.streams,
      client: runtime.client,
      db: harness.db,
      databaseUrl: harness.databaseUrl,
      rejected: await openToReplay(harness.db, { source: 'cin7' }),
      logger: harness.logger,
    });
    expect(replayed).toMatchObject({ status: 'succeeded', resolved: 1, failedAgain: 1 });
    const run = await harness.db.syncRun.findFirstOrThrow({ where: { mode: 'replay' } });

    // Side by side: the list as text, as JSON, cut by --limit, and bad arguments.
    const bad = [
      ['--limit', 'x'],
      ['--source', 'nope'],
      ['--since', '1d'],
    ];
    const [text, open, limited, ...answers] = await Promise.all([
      ...[[], ['--open', '--json', '--source', 'cin7'], ['--limit', '1'], ...bad].map((args) =>
        runCommand(CLI, ['rejected', 'list', ...args], harness.env),
      ),
      runCommand(CLI, ['rejected', 'replay', '--id', 'x1'], harness.env),
    ]);
    expect(text).toMatchObject({ code: 0, stderr: '' });
    const lines = text!.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^id\s+source\s+record\s+reason\s+seen\s+first rejected\s+last rejected\s+state$/);
    expect(lines).toHaveLength(4);
    expect(text!.stdout).toMatch(new RegExp(`cin7\\s+${fixed.code}\\s+amount: .*replayed \\(run ${run.id}, `));
    expect(text!.stdout).toMatch(/carecloud\s+\S+\s+.*\bopen$/m);
    expect(text!.stdout).not.toMatch(/@/);

    expect(open!.code).toBe(0);
    const listed = JSON.parse(open!.stdout) as Record<string, unknown>[];
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({ source: 'cin7', resolution: null, resolvedAt: null, timesSeen: 2 });
    expect(Object.keys(listed[0]!)).not.toContain('raw');
    expect(open!.stdout).not.toMatch(/@/);

    expect(limited!.stdout.trim().split('\n').at(-1)).toBe('(1 of 3: --limit shows more)');
    expect(answers.map((a) => [a.code, a.stderr.trim().split('\n').length, a.stdout])).toEqual(
      [...bad, 'replay --id x1'].map(() => [2, 1, '']),
    );
    expect(answers.at(-1)!.stderr).toMatch(/^error: --id takes the id of a rejected record \(got "x1"\)/);
  }, 90_000);
});
