/**
 * What the customer-run tests share (test/integration/customer-sync*.test.ts): a harness already synced, a customer
 * of the fake CareCloud to re-read, a watch on (and a hold of) the fake's list requests, and the CLI as a process a
 * test can signal.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CareCloudVoucher } from '../../src/fake/carecloud.ts';
import { isServiceCode } from '../../src/fake/carecloud-data.ts';
import type { ListRequestInfo } from '../../src/fake/list-hooks.ts';
import { nodeArgsFor } from './run-command.ts';
import { createHarness, type Harness } from './sync-harness.ts';

export const CLI = 'src/cli/main.ts';
export const CUSTOMER_LIST = /\/customers\/([^/]+)\/vouchers$/;
export const MAIN_LIST = /\/v1\.0\/vouchers$/;

/** 600 vouchers (about 3 a customer) read 50 a page, stored by a first backfill; `env` added to the harness's. */
export async function syncedHarness(env: Record<string, string> = {}): Promise<Harness> {
  const harness = await createHarness({ env: { CARECLOUD_PAGE_SIZE: '50', CARECLOUD_SLICE_PAGES: '100000', ...env } });
  await harness.sync('carecloud');
  return harness;
}

/** A customer whose `n` or more vouchers at the source are all live and listed (no service voucher), and those. */
export function customerWith(harness: Harness, n: number): { customerId: string; vouchers: CareCloudVoucher[] } {
  const byCustomer = new Map<string, CareCloudVoucher[]>();
  for (const v of harness.careCloud.store.all())
    byCustomer.set(v.customer_id, [...(byCustomer.get(v.customer_id) ?? []), v]);
  const [customerId, vouchers] = [...byCustomer].find(
    ([, list]) => list.length >= n && list.every((v) => v.state !== 0 && !isServiceCode(v.code)),
  )!;
  return { customerId, vouchers };
}

export const stored = async (harness: Harness, sourceId: string) =>
  harness.db.voucher.findUniqueOrThrow({ where: { source_sourceId: { source: 'carecloud', sourceId } } });

export const customerRuns = (harness: Harness) =>
  harness.db.syncRun.findMany({ where: { source: 'carecloud', mode: 'customer' }, orderBy: { id: 'asc' } });

/** The customer lists the fake was asked for, and a way to hold a list request until `release()`. */
export function watchLists(harness: Harness, hold?: (info: ListRequestInfo) => boolean) {
  const customers: string[] = [];
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let held!: () => void;
  const holding = new Promise<void>((resolve) => (held = resolve));
  const remove = harness.careCloud.store.onListRequest(async (info) => {
    const customer = CUSTOMER_LIST.exec(info.path)?.[1];
    if (customer) customers.push(decodeURIComponent(customer));
    if (hold?.(info)) {
      held();
      await released;
    }
  });
  return { customers, holding, release, remove };
}

/** The command as a process this test can signal, run outside the repository as runCommand does. */
export function spawnCommand(args: string[], env: Record<string, string>, children: ChildProcess[]) {
  const child = spawn(process.execPath, [...nodeArgsFor(CLI), ...args], {
    cwd: mkdtempSync(join(tmpdir(), 'voucher-sync-customer-')),
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += String(chunk)));
  child.stderr.on('data', (chunk: Buffer) => (stderr += String(chunk)));
  const exited = once(child, 'close').then(([code]) => ({ code: code as number | null, stdout, stderr }));
  return { child, exited };
}
