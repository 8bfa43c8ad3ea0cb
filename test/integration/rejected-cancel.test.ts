/**
 * Ctrl-C on `voucher-sync rejected replay`: it stops after the record it is reading, keeps what it resolved, leaves
 * the rest open, and says so — ledger status `cancelled`, exit 130.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { REPOSITORY } from '../helpers/run-command.ts';
import { createHarness, type Harness } from '../helpers/sync-harness.ts';

let h: Harness | undefined;
let child: ChildProcess | undefined;
afterEach(async () => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  child = undefined;
  await h?.close();
  h = undefined;
});

describe('rejected replay, cancelled', () => {
  it('SIGINT stops it after the current record: cancelled, exit 130, the rest open', async () => {
    // Slow answers (a quarter of a second each), so that the replay is still reading when it is told to stop.
    h = await createHarness({ careCloud: { count: 20, latencyMs: 250 } });
    const harness = h;
    const broken = Array.from({ length: 30 }, () => harness.careCloud.store.insertMalformed('comma-number'));
    await harness.sync('carecloud');
    for (const record of broken) harness.careCloud.store.update(String(record.voucher_id), { value: 5 });

    const loader = pathToFileURL(join(REPOSITORY, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;
    child = spawn(
      process.execPath,
      ['--import', loader, join(REPOSITORY, 'src/cli/main.ts'), 'rejected', 'replay', '--source', 'carecloud'],
      {
        cwd: mkdtempSync(join(tmpdir(), 'voucher-sync-replay-')),
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...harness.env },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    child.stdout!.on('data', (chunk: Buffer) => (stdout += String(chunk)));
    const exited = once(child, 'exit');
    const deadline = Date.now() + 40_000;
    for (;;) {
      const run = await harness.db.syncRun.findFirst({ where: { mode: 'replay' } });
      if (run && run.pages >= 2) break;
      if (Date.now() > deadline) throw new Error('the replay did not get going');
      await sleep(50);
    }
    child.kill('SIGINT');
    const [code] = (await exited) as [number | null];

    expect(code).toBe(130);
    const run = await harness.db.syncRun.findFirstOrThrow({ where: { mode: 'replay' } });
    expect(run).toMatchObject({ status: 'cancelled', finishedAt: expect.any(Date) });
    const resolved = await harness.db.rejectedRecord.count({ where: { resolution: 'replayed' } });
    const open = await harness.db.rejectedRecord.count({ where: { resolvedAt: null } });
    expect(resolved).toBe(run.inserted);
    expect(resolved).toBeGreaterThanOrEqual(2);
    expect(open).toBe(30 - resolved);
    expect(open).toBeGreaterThan(0);
    expect(stdout.trim()).toBe(
      `carecloud (run ${run.id}): ${resolved} resolved, 0 failed again, 0 gone at the source, 0 cannot be fetched again; cancelled, the rest left open`,
    );
  });
});
