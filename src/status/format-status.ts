/**
 * The status report as a person reads it in a terminal: a few aligned lines per source, the most telling first.
 * Times are UTC, as everywhere in voucher-sync; ages and durations are rounded to their two largest units.
 */
import type { SourceStatus, StatusReport } from './types.ts';

const UNITS: [string, number][] = [
  ['d', 86_400],
  ['h', 3_600],
  ['m', 60],
  ['s', 1],
];

/** 0s, 45s, 5m 10s, 2h 3m, 3d 4h. */
export function formatDuration(seconds: number): string {
  let left = Math.max(0, Math.round(seconds));
  if (left === 0) return '0s';
  const parts: string[] = [];
  for (const [unit, size] of UNITS) {
    if (left >= size && parts.length < 2) {
      parts.push(`${Math.floor(left / size)}${unit}`);
      left %= size;
    } else if (parts.length > 0) break;
  }
  return parts.join(' ');
}

const number = (n: number) => n.toLocaleString('en-US');
const time = (iso: string) => iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
const ago = (iso: string, now: Date) => formatDuration((now.getTime() - Date.parse(iso)) / 1000);
const until = (iso: string, now: Date) => {
  const left = (Date.parse(iso) - now.getTime()) / 1000;
  // A scheduled run whose time has come waits for a worker: "due", not "in 0s".
  return `${time(iso)} (${left < 1 ? 'due' : `in ${formatDuration(left)}`})`;
};

export function formatStatus(report: StatusReport): string {
  const now = new Date(report.at);
  const service = report.serviceUp
    ? `service: up (${report.processes.length} ${report.processes.length === 1 ? 'process' : 'processes'}: ${report.processes
        .map((p) => `${p.role} ${p.host}:${p.pid}`)
        .join(', ')})`
    : 'service: DOWN (no worker heartbeat)';
  return [
    `voucher-sync status at ${time(report.at)}`,
    service,
    ...report.sources.map((s) => formatSource(s, now)),
  ].join('\n\n');
}

function formatSource(s: SourceStatus, now: Date): string {
  const head = `${s.source}  ${s.configured ? s.state.toUpperCase() : 'not configured (its credentials are not set)'}${
    s.stale ? '  STALE' : ''
  }`;
  const lines: [string, string][] = [];
  if (s.paused)
    lines.push([
      'paused',
      `since ${time(s.paused.since)} (${ago(s.paused.since, now)} ago)${s.paused.by ? ` by ${s.paused.by}` : ''}: scheduled runs are skipped until voucher-sync resume --source ${s.source}`,
    ]);
  lines.push([
    'last success',
    s.lastSuccessAt === null ? 'never' : `${time(s.lastSuccessAt)} (${ago(s.lastSuccessAt, now)} ago)`,
  ]);
  const staleAfter = s.staleAfterSeconds === null ? '' : ` (stale after ${formatDuration(s.staleAfterSeconds)})`;
  lines.push([
    'freshness',
    `${s.freshnessSeconds === null ? 'unknown: no successful incremental run yet' : formatDuration(s.freshnessSeconds)}${staleAfter}`,
  ]);
  if (s.run) lines.push(['run', formatRun(s.run)]);
  if (s.waiting) lines.push(['waiting', formatWaiting(s.waiting, now)]);
  if (s.nextRuns.length > 0)
    lines.push(['next runs', s.nextRuns.map((r) => `${r.mode} ${until(r.at, now)}`).join(', ')]);
  const q = s.queue;
  lines.push(['queue', `waiting ${q.waiting}, active ${q.active}, delayed ${q.delayed}, failed ${q.failed}`]);
  lines.push(['rejected', `${number(s.rejectedOpen)} open`]);
  if (s.limits.length > 0)
    lines.push(['limits', s.limits.map((l) => `${number(l.used)}/${number(l.limit)} per ${l.window}`).join(', ')]);
  if (s.budget) {
    const share = s.budget.limit > 0 ? Math.round((s.budget.used / s.budget.limit) * 100) : 0;
    lines.push([
      'daily budget',
      `${number(s.budget.used)} of ${number(s.budget.limit)} in the last ${s.budget.windowSeconds === 86_400 ? '24 hours' : formatDuration(s.budget.windowSeconds)} (${share} %)`,
    ]);
  }
  if (s.plan) lines.push(['budget plan', formatPlan(s.plan, now)]);
  if (s.pageSize) lines.push(['page size', formatPageSize(s.pageSize)]);
  lines.push(['429s', `${number(s.recent429)} in the last hour`]);
  lines.push([
    'failures',
    s.consecutiveFailures === 0
      ? 'none since the last success'
      : `${s.consecutiveFailures} in a row${s.lastError ? `; last at ${time(s.lastError.at)}: ${firstLine(s.lastError.message)}` : ''}`,
  ]);
  const width = Math.max(...lines.map(([label]) => label.length));
  return [head, ...lines.map(([label, value]) => `  ${label.padEnd(width)}  ${value}`)].join('\n');
}

function formatRun(run: NonNullable<SourceStatus['run']>): string {
  const records =
    run.estimatedTotal === null
      ? `${number(run.records)} records`
      : `${number(run.records)} of ${number(run.estimatedTotal)} records`;
  const rate = run.rate === null ? '' : `, ${run.rate.toFixed(1)}/s`;
  const eta = run.etaSeconds === null ? '' : `, ETA ${formatDuration(run.etaSeconds)}`;
  return `${run.mode} since ${time(run.startedAt)}: ${number(run.pages)} pages, ${records}, ${number(run.requests)} requests${rate}${eta}`;
}

/**
 * "full needs ~4,001 requests; 3,900 allowed now, 4,424 per 1d (576 kept for incremental runs); done by
 * 2026-12-03 03:10:00Z (in 1d 2h)"
 */
function formatPlan(plan: NonNullable<SourceStatus['plan']>, now: Date): string {
  const per = formatDuration(plan.windowSeconds);
  const allowed = `${number(plan.allowedNow)} allowed now, ${number(plan.allowedPerWindow)} per ${per} (${number(plan.reserve)} kept for incremental runs)`;
  if (plan.scans.length === 0) return `nothing pending; reconciliations and backfills: ${allowed}`;
  const needs = plan.scans.map((scan) => `${scan.mode} needs ~${number(scan.requests)} requests`).join(', ');
  const done = plan.expectedCompletionAt === null ? '' : `; done by ${until(plan.expectedCompletionAt, now)}`;
  return `${needs}; ${allowed}${done}`;
}

/**
 * "100 records a request (configured)", "700 records a request, found at run time (701 refused, at …)",
 * "up to 1,000 records a request, to be found by the next run (auto)"
 */
function formatPageSize(p: NonNullable<SourceStatus['pageSize']>): string {
  const size = `${number(p.size)} records a request`;
  if (p.setting === 'configured') return `${size} (configured)`;
  const at = p.checkedAt === null ? '' : `, at ${time(p.checkedAt)}`;
  if (p.found)
    return `${size}, found at run time (${p.refused === null ? 'the most it asks for, accepted' : `${number(p.refused)} refused`}${at})`;
  if (p.accepted === null && p.refused === null)
    return `up to ${number(p.ceiling ?? p.size)} records a request, to be found by the next run (auto)`;
  const known = [
    p.accepted !== null && `${number(p.accepted)} accepted`,
    p.refused !== null && `${number(p.refused)} refused`,
  ];
  return `finding it (auto): ${known.filter(Boolean).join(', ')}${at}; the next request asks for ${number(p.size)}`;
}

const REASONS: Record<string, string> = {
  rate_limit: 'for the rate limit',
  daily_budget: 'for the daily budget',
  source_busy: 'behind another run of this source',
};

function formatWaiting(waiting: NonNullable<SourceStatus['waiting']>, now: Date): string {
  const reason = REASONS[waiting.reason] ?? waiting.reason;
  return waiting.until === null ? reason : `${reason}, until ${until(waiting.until, now)}`;
}

// A long error (a server's page quoted in it) would push the rest of the report off the screen; --json has it all.
const firstLine = (text: string) => {
  const line = text.split('\n')[0]!;
  return line.length > 200 ? `${line.slice(0, 199)}…` : line;
};
