/**
 * tsx src/fake/measure-memory.ts [count]
 *
 * Not a test: builds the fake of every registered source with `count` vouchers (default 1,000,000), pages through a
 * slice of each the way the sync does (each source's `fake.measure`, src/sources/<name>/fake.ts), and prints build
 * time, time per page and resident memory.
 */
import { sources } from '../sources/index.ts';

const count = Number(process.argv[2] ?? 1_000_000);
const pages = 50;
const mb = (bytes: number) => `${Math.round(bytes / 1_048_576)} MB`;
const report = (label: string) => {
  const { rss, heapUsed } = process.memoryUsage();
  console.log(`${label.padEnd(34)} rss ${mb(rss)}, heap ${mb(heapUsed)}`);
};

report('start');
const built = sources.map(({ fake }) => {
  const started = performance.now();
  const server = fake.create({ count, rateLimits: null });
  console.log(`${fake.label.replace(/^Fake /, '')} built in ${Math.round(performance.now() - started)} ms`);
  return { fake, server };
});
report('all built');

const urls = await Promise.all(built.map(({ server }) => server.start()));
for (const [i, { fake, server }] of built.entries()) {
  if (fake.measure) console.log(await fake.measure(server, urls[i]!, count, pages));
}
report('after paging');
await Promise.all(built.map(({ server }) => server.stop()));
