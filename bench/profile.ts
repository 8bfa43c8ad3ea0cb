/**
 * Reads a V8 .cpuprofile (node --cpu-prof) and says where a worker's time went: per category (the first
 * frame of each sample that belongs to our code or a package, so that JSON.parse called by got counts as
 * HTTP and JSON.stringify called by writePage counts as the page write), the top functions by self time,
 * and inclusive time of our own functions.
 */
import { readFileSync } from 'node:fs';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  /** Wall time covered by the samples analysed, ms. */
  windowMs: number;
  /** Time on the CPU (everything but "(idle)"), ms. */
  busyMs: number;
  categories: { name: string; ms: number; share: number }[];
  topSelf: { name: string; ms: number }[];
  topInclusive: { name: string; ms: number }[];
}

const SPECIAL: Record<string, string> = {
  '(idle)': 'idle (waiting for I/O: API, PostgreSQL, Redis)',
  '(garbage collector)': 'garbage collection',
  '(program)': 'V8/native (program)',
  '(root)': 'V8/native (program)',
};

const PACKAGES: [RegExp, string][] = [
  [/\/node_modules\/(@prisma|pg|pg-[\w-]+|postgres-[\w-]+|@prisma\/adapter-pg)\//, 'Prisma + pg driver'],
  [
    /\/node_modules\/(got|@sindresorhus|@szmarczak|cacheable-[\w-]+|http2-wrapper|decompress-response|responselike|keyv|lowercase-keys|form-data-encoder|byte-counter|chunk-data|type-fest)\//,
    'HTTP client (got)',
  ],
  [
    /\/node_modules\/(bullmq|ioredis|@ioredis|msgpackr|redis-[\w-]+|cluster-key-slot|cron-parser|standard-as-callback|denque)\//,
    'BullMQ + ioredis',
  ],
  [
    /\/node_modules\/(pino|pino-[\w-]+|sonic-boom|thread-stream|fast-redact|@pinojs|quick-format-unescaped|safe-stable-stringify|atomic-sleep|on-exit-leak-free|real-require)\//,
    'logging (pino)',
  ],
  [/\/node_modules\/luxon\//, 'luxon (date parsing)'],
  [/\/node_modules\/zod\//, 'zod'],
  [/\/node_modules\/(tsx|esbuild|get-tsconfig|resolve-pkg-maps)\//, 'tsx loader (start-up)'],
  [/\/src\/sources\//, 'mapping + paging (src/sources)'],
  [/\/src\/db\/(write-page|check-voucher-row)\.ts/, 'writePage: serialize + check rows'],
  [/\/src\/db\//, 'src/db (other)'],
  [/\/src\/sync\//, 'engine (src/sync)'],
  [/\/src\/http\//, 'HTTP layer (src/http)'],
  [/\/src\/generated\//, 'Prisma + pg driver'],
  [/\/jobs\//, 'job layer (jobs/)'],
  [/\/src\//, 'src (other)'],
];

function categoryOf(url: string): string | undefined {
  if (url === '' || url.startsWith('node:') || url.startsWith('wasm:') || !url.includes('/')) return undefined;
  for (const [pattern, name] of PACKAGES) if (pattern.test(url)) return name;
  const pkg = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)?.[1];
  return pkg ? `package ${pkg}` : 'other code';
}

const shortUrl = (url: string) => url.replace(/^file:\/\//, '').replace(/^.*?\/(node_modules|src|jobs)\//, '$1/');

/**
 * @param window epoch ms interval to keep; `profileStartEpochMs` maps the profile's clock onto it.
 */
export function summarizeProfile(
  path: string,
  window?: { fromMs: number; toMs: number; profileStartEpochMs: number },
): ProfileSummary {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);

  const categoryCache = new Map<number, string>();
  const categorize = (id: number): string => {
    const cached = categoryCache.get(id);
    if (cached) return cached;
    const leaf = byId.get(id)!;
    let name =
      SPECIAL[leaf.callFrame.functionName] && leaf.callFrame.url === ''
        ? SPECIAL[leaf.callFrame.functionName]
        : undefined;
    for (let at: number | undefined = id; name === undefined && at !== undefined; at = parent.get(at)) {
      name = categoryOf(byId.get(at)!.callFrame.url);
    }
    name ??= 'Node.js internals (sockets, streams, timers)';
    categoryCache.set(id, name);
    return name;
  };
  // Files compiled by tsx report line 0; their functions are named well enough without it.
  const label = (frame: CallFrame) =>
    `${frame.functionName || '(anonymous)'} ${frame.url ? `${shortUrl(frame.url)}${frame.lineNumber > 0 ? `:${frame.lineNumber + 1}` : ''}` : '(native)'}`;

  const categories = new Map<string, number>();
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let windowUs = 0;
  let busyUs = 0;
  let t = profile.startTime;
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0;
    t += delta;
    if (window) {
      const epoch = window.profileStartEpochMs + (t - profile.startTime) / 1000;
      if (epoch < window.fromMs || epoch > window.toMs) return;
    }
    windowUs += delta;
    const node = byId.get(id);
    if (!node) return;
    const category = categorize(id);
    categories.set(category, (categories.get(category) ?? 0) + delta);
    if (node.callFrame.functionName !== '(idle)') busyUs += delta;
    const own = label(node.callFrame);
    self.set(own, (self.get(own) ?? 0) + delta);
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const frame = byId.get(at)!.callFrame;
      if (!/\/(src|jobs)\//.test(frame.url) || /\/src\/generated\//.test(frame.url)) continue;
      const name = label(frame);
      if (seen.has(name)) continue;
      seen.add(name);
      inclusive.set(name, (inclusive.get(name) ?? 0) + delta);
    }
  });
  const ms = (us: number) => us / 1000;
  const sorted = (map: Map<string, number>, n: number) =>
    [...map]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([name, us]) => ({ name, ms: ms(us) }));
  return {
    windowMs: ms(windowUs),
    busyMs: ms(busyUs),
    categories: sorted(categories, 30).map((c) => ({ ...c, share: windowUs > 0 ? c.ms / ms(windowUs) : 0 })),
    topSelf: sorted(self, 15),
    topInclusive: sorted(inclusive, 15),
  };
}

export function formatProfile(summary: ProfileSummary): string {
  const pct = (share: number) => `${(share * 100).toFixed(1).padStart(5)} %`;
  const lines = [
    `  ${(summary.windowMs / 1000).toFixed(1)} s profiled, ${(summary.busyMs / 1000).toFixed(1)} s on the CPU`,
  ];
  lines.push('  by category (share of wall time):');
  for (const c of summary.categories.filter((c) => c.share >= 0.002)) lines.push(`    ${pct(c.share)}  ${c.name}`);
  lines.push('  top functions by self time:');
  for (const f of summary.topSelf.slice(0, 10)) lines.push(`    ${(f.ms / 1000).toFixed(2).padStart(6)} s  ${f.name}`);
  lines.push('  our functions, inclusive (CPU only, awaits excluded):');
  for (const f of summary.topInclusive.slice(0, 10))
    lines.push(`    ${(f.ms / 1000).toFixed(2).padStart(6)} s  ${f.name}`);
  return lines.join('\n');
}
