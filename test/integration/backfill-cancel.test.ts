/**
 * Ctrl-C on `voucher-sync backfill` cancels the backfill after its current page (exit 130, ledger `cancelled`), and
 * the same command run again resumes it from its saved progress — the watermark untouched throughout.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { REPOSITORY, runCommand } from '../helpers/run-command.ts';
import { createHarness, type Harness } from '../helpers/sync-harness.ts';

const CLI = 'src/cli/main.ts';

let h: Harness | undefined;

afterEach(async () => {
  await h?.close();
  h = undefined;
});

const second = (date: Date) => date.toISOString().replace(/\.\d{3}Z$/, 'Z');

describe('Ctrl-C on voucher-sync backfill', () => {
  it('cancels it after its page; asked for again, it resumes where it stood', async () => {
    h = await createHarness({ env: { CIN7_PAGE_SIZE: '20', CIN7_SLICE_PAGES: '2', SLICE_CONCURRENCY: '1' } });
    const harness = h;
    await harness.sync('cin7');
    const { watermark } = await harness.db.syncState.findFirstOrThrow({ where: { source: 'cin7' } });
    const stored = await harness.db.voucher.findMany({
      where: { source: 'cin7' },
      orderBy: { sourceCreatedAt: 'asc' },
    });
    const from = second(new Date(Math.ceil(stored[50]!.sourceCreatedAt!.getTime() / 1000) * 1000));
    const to = second(new Date(Math.ceil(stored[550]!.sourceCreatedAt!.getTime() / 1000) * 1000));
    // Slow pages, so that the backfill is still reading when Ctrl-C comes.
    harness.cin7.faults.inject({ kind: 'delay', ms: 150 }, { on: 'list', times: 10_000 });

    const loader = pathToFileURL(join(REPOSITORY, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;
    const child = spawn(
      process.execPath,
      ['--import', loader, join(REPOSITORY, CLI), 'backfill', '--source', 'cin7', '--from', from, '--to', to],
      {
        cwd: mkdtempSync(join(tmpdir(), 'voucher-sync-backfill-')),
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...harness.env, LOG_LEVEL: 'warn' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += String(chunk)));
    const exited = once(child, 'exit');
    // Once it has committed some slice pages, the operator presses Ctrl-C.
    for (let i = 0; i < 600; i++) {
      const run = await harness.db.syncRun.findFirst({ where: { mode: 'backfill' } });
      if (run && run.pages >= 3) break;
      await sleep(100);
    }
    child.kill('SIGINT');
    const [code] = (await exited) as [number | null];
    expect(code, stderr).toBe(130);
    expect(stderr).toContain('Cancelling: the backfill stops after its current page');
    const cancelled = await harness.db.syncRun.findFirstOrThrow({
      where: { mode: 'backfill' },
      orderBy: { id: 'asc' },
    });
    expect(cancelled.status).toBe('cancelled');
    const saved = (await harness.db.syncState.findFirstOrThrow({ where: { source: 'cin7' } })).progress as Record<
      string,
      unknown
    >;
    expect(saved.backfill).toBeDefined();

    harness.cin7.faults.clear();
    const probes: string[] = [];
    harness.cin7.store.onListRequest(({ query }) => void (query.get('fields') && probes.push(query.toString())));
    const again = await runCommand(
      CLI,
      ['backfill', '--source', 'cin7', '--from', from, '--to', to],
      { ...harness.env, LOG_LEVEL: 'warn' },
      { timeoutMs: 90_000 },
    );
    expect(again.code, again.stderr).toBe(0);
    const rows = await harness.db.syncRun.findMany({ where: { mode: 'backfill' }, orderBy: { id: 'asc' } });
    expect(rows.at(-1)!.status).toBe('succeeded');
    // It went on from the saved scan: the plan was not made again (its probes ask for the CreatedDate field only).
    expect(probes).toEqual([]);
    const after = await harness.db.syncState.findFirstOrThrow({ where: { source: 'cin7' } });
    expect(after.progress).toEqual({});
    expect(after.watermark).toEqual(watermark);
    const inRange = stored.filter(
      (v) => v.sourceCreatedAt! >= new Date(from) && v.sourceCreatedAt! < new Date(to),
    ).length;
    expect(rows.reduce((sum, r) => sum + r.fetched, 0)).toBeGreaterThanOrEqual(inRange);
  }, 120_000);
});
