/**
 * Merges texts in Prometheus' exposition format into one with a single `# HELP` and `# TYPE` per family. BullMQ's
 * `exportPrometheusMetrics()` prints a whole block, HELP and TYPE included, for each queue; concatenated, the same
 * family would be declared once per queue, which Prometheus' parser (and `promtool check metrics`) refuses. A series
 * met twice is kept once (the first), for the same reason.
 */

export interface MergeOptions {
  /** Families served under another name, their samples too. */
  rename?: Record<string, string>;
  /** Families left out. */
  drop?: readonly string[];
}

interface Family {
  help?: string;
  type?: string;
  samples: string[];
}

const COMMENT = /^#\s*(HELP|TYPE)\s+([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\s(.*))?$/;
const SAMPLE_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
// The samples a histogram or summary family writes under names of their own.
const SUFFIXES = ['_bucket', '_sum', '_count', '_created', '_total', '_info'];

/** The series a sample line is of (name and labels, whitespace dropped), without its value and timestamp. */
function seriesOf(line: string): string {
  const close = line.lastIndexOf('}');
  const head = close === -1 ? line.split(/\s/, 1)[0]! : line.slice(0, close + 1);
  return head.replace(/\s+/g, '');
}

export function mergeExposition(texts: string[], options: MergeOptions = {}): string {
  const { rename = {}, drop = [] } = options;
  const families = new Map<string, Family>();
  const seen = new Set<string>();
  const familyOf = (name: string): Family => {
    let family = families.get(name);
    if (!family) families.set(name, (family = { samples: [] }));
    return family;
  };
  for (const text of texts) {
    let current: string | undefined;
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      const comment = COMMENT.exec(line);
      if (comment) {
        const [, kind, name, rest = ''] = comment;
        const family = familyOf(name!);
        if (kind === 'HELP') family.help ??= rest;
        else family.type ??= rest.trim();
        current = name;
        continue;
      }
      if (line.startsWith('#')) continue;
      const name = SAMPLE_NAME.exec(line)?.[0];
      if (!name) continue;
      const belongs =
        current !== undefined && (name === current || SUFFIXES.some((suffix) => name === current + suffix));
      const series = seriesOf(line);
      if (seen.has(series)) continue;
      seen.add(series);
      familyOf(belongs ? current! : name).samples.push(line.trim());
    }
  }
  const out: string[] = [];
  for (const [original, family] of families) {
    if (drop.includes(original)) continue;
    const name = rename[original] ?? original;
    // Every sample of a family starts with its name (a histogram's with a suffix after it).
    if (name !== original) family.samples = family.samples.map((sample) => name + sample.slice(original.length));
    if (family.help !== undefined) out.push(`# HELP ${name} ${family.help}`);
    if (family.type !== undefined) out.push(`# TYPE ${name} ${family.type}`);
    out.push(...family.samples);
  }
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}
