/**
 * tsx src/fake/measure-memory.ts [count]
 *
 * Not a test: builds both fakes with `count` vouchers (default 1,000,000), pages through a slice of each
 * the way the sync does, and prints build time, time per page and resident memory.
 */
import { createFakeCareCloud } from './carecloud.ts';
import { createFakeCin7 } from './cin7.ts';

const count = Number(process.argv[2] ?? 1_000_000);
const mb = (bytes: number) => `${Math.round(bytes / 1_048_576)} MB`;
const report = (label: string) => {
  const { rss, heapUsed } = process.memoryUsage();
  console.log(`${label.padEnd(34)} rss ${mb(rss)}, heap ${mb(heapUsed)}`);
};

report('start');
let started = performance.now();
const careCloud = createFakeCareCloud({ count, rateLimits: null });
console.log(`CareCloud built in ${Math.round(performance.now() - started)} ms`);
started = performance.now();
const cin7 = createFakeCin7({ count, rateLimits: null });
console.log(`Cin7 built in ${Math.round(performance.now() - started)} ms`);
report('both built');

const ccUrl = await careCloud.start();
const c7Url = await cin7.start();
const login = await fetch(`${ccUrl}/users/actions/login`, {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ user_external_application_id: 'demo-app', login: 'demo', password: 'demo-password' }),
});
const token = ((await login.json()) as { data: { bearer_token: string } }).data.bearer_token;

for (let i = 0; i < 200; i++) careCloud.store.update(careCloud.store.insert().voucher_id);
const pages = 50;
started = performance.now();
for (let page = 0; page < pages; page++) {
  const offset = Math.floor((page / pages) * count);
  const response = await fetch(`${ccUrl}/vouchers?count=1000&offset=${offset}&sort_field=last_change&sort_direction=DESC`, {
    headers: { authorization: `Bearer ${token}` },
  });
  await response.arrayBuffer();
}
console.log(`CareCloud: ${((performance.now() - started) / pages).toFixed(1)} ms per page of 1000 (DESC, spread offsets)`);
started = performance.now();
const basic = `Basic ${Buffer.from('demo:demo-key').toString('base64')}`;
for (let page = 1; page <= pages; page++) {
  const where = encodeURIComponent("CreatedDate>='2020-01-01T00:00:00Z'");
  const response = await fetch(`${c7Url}/v1/Voucher?where=${where}&order=CreatedDate&rows=250&page=${page * 70}`, {
    headers: { authorization: basic },
  });
  await response.arrayBuffer();
}
console.log(`Cin7: ${((performance.now() - started) / pages).toFixed(1)} ms per page of 250 (CreatedDate window)`);
report('after paging');
await Promise.all([careCloud.stop(), cin7.stop()]);
