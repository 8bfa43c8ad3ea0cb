/** The bench's options, the figure-versus-target lines every part produces, and how they are printed. */

export interface WriterOptions {
  /** Rows per source; pages of 250. */
  rowsPerSource: number;
  /** Rounds per method, run round-robin; the median is reported. */
  rounds: number;
}

/** One figure next to its target. `met` null: no target, shown for reference. */
export interface Check {
  part: string;
  metric: string;
  value: string;
  target: string;
  met: boolean | null;
}

export function formatTable(checks: Check[]): string {
  const header = { part: 'part', metric: 'figure', value: 'measured', target: 'target', status: '' };
  const rows = checks.map((c) => ({ ...c, status: c.met === null ? '' : c.met ? 'met' : 'MISSED' }));
  const all = [header, ...rows];
  const width = (key: keyof typeof header) => Math.max(...all.map((r) => r[key].length));
  const w = { part: width('part'), metric: width('metric'), value: width('value'), target: width('target') };
  const line = (r: typeof header) =>
    `${r.part.padEnd(w.part)}  ${r.metric.padEnd(w.metric)}  ${r.value.padStart(w.value)}  ${r.target.padEnd(w.target)}  ${r.status}`.trimEnd();
  const rule = '-'.repeat(w.part + w.metric + w.value + w.target + 16);
  return [line(header), rule, ...rows.map(line)].join('\n');
}

export const mb = (bytes: number | null) => (bytes === null ? 'n/a' : `${Math.round(bytes / 1_048_576)} MB`);
export const int = (n: number) => Math.round(n).toLocaleString('en-US');
export const secs = (ms: number) => (ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`);
