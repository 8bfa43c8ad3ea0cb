/* global uPlot, document, window, sessionStorage, fetch, Headers, setInterval, clearInterval, setTimeout, clearTimeout */
// The status page. Plain script, no build step: it reads /api/status every 5 s and /api/history every minute, and
// draws with uPlot (served by the process from node_modules). Text from the server goes in with textContent only.
// Each chart also writes what it drew into the DOM (data-points, and a table for screen readers), so that a test
// or a person can check the points against the ledger.
'use strict';

const STATUS_EVERY_MS = 5_000;
const HISTORY_EVERY_MS = 60_000;
const TOKEN_KEY = 'voucher-sync-token';
// Ticks of a duration axis fall on whole units (30s, 5m, 1h), not on 16m 40s.
const DURATION_STEPS = [
  1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800,
];
const COLORS = ['#2f6fdf', '#d9622b', '#2a9d5b', '#8e44ad', '#b8860b'];

let token = sessionStorage.getItem(TOKEN_KEY);
let statusTimer;
let historyTimer;
const charts = new Map();

class Unauthorized extends Error {}

const $ = (id) => document.getElementById(id);

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'class') node.className = value;
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === 'string' || typeof child === 'number' ? String(child) : child);
  }
  return node;
}

async function api(path, init = {}) {
  const headers = new Headers(init.headers);
  if (token) headers.set('Authorization', `Bearer ${token}`);
  const response = await fetch(path, { ...init, headers, cache: 'no-store', credentials: 'same-origin' });
  if (response.status === 401) throw new Unauthorized();
  if (!response.ok) throw new Error(`${path}: ${response.status} ${(await response.text()).trim()}`);
  return response.status === 204 ? null : response.json();
}

// --- formatting (the same words and units as `npm run status`) ---

const UNITS = [
  ['d', 86_400],
  ['h', 3_600],
  ['m', 60],
  ['s', 1],
];

function duration(seconds) {
  let left = Math.max(0, Math.round(seconds));
  if (left === 0) return '0s';
  const parts = [];
  for (const [unit, size] of UNITS) {
    if (left >= size && parts.length < 2) {
      parts.push(`${Math.floor(left / size)}${unit}`);
      left %= size;
    } else if (parts.length > 0) break;
  }
  return parts.join(' ');
}

const number = (n) => (n === null || n === undefined ? '–' : Number(n).toLocaleString('en-US'));
const time = (iso) => (iso ? iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '–');
const ago = (iso, now) => duration((now - Date.parse(iso)) / 1000);
const until = (iso, now) => `${time(iso)} (in ${duration((Date.parse(iso) - now) / 1000)})`;
const REASONS = {
  rate_limit: 'for the rate limit',
  daily_budget: 'for the daily budget',
  source_busy: 'behind another run of this source',
};

// --- the facts of each source ---

function runText(run) {
  const records =
    run.estimatedTotal === null
      ? `${number(run.records)} records`
      : `${number(run.records)} of ${number(run.estimatedTotal)} records`;
  const rate = run.rate === null ? '' : `, ${run.rate.toFixed(1)}/s`;
  const eta = run.etaSeconds === null ? '' : `, ETA ${duration(run.etaSeconds)}`;
  return `${run.mode} since ${time(run.startedAt)}: ${number(run.pages)} pages, ${records}, ${number(run.requests)} requests${rate}${eta}`;
}

function sourceFacts(s, now) {
  const facts = [];
  if (s.paused)
    facts.push([
      'paused',
      `since ${time(s.paused.since)} (${ago(s.paused.since, now)} ago)${s.paused.by ? ` by ${s.paused.by}` : ''}: scheduled runs are skipped until voucher-sync resume`,
    ]);
  facts.push([
    'last success',
    s.lastSuccessAt === null ? 'never' : `${time(s.lastSuccessAt)} (${ago(s.lastSuccessAt, now)} ago)`,
  ]);
  const staleAfter = s.staleAfterSeconds == null ? '' : ` (stale after ${duration(s.staleAfterSeconds)})`;
  facts.push([
    'freshness',
    `${s.freshnessSeconds === null ? 'unknown: no successful incremental run yet' : duration(s.freshnessSeconds)}${staleAfter}`,
  ]);
  if (s.run) facts.push(['run', runText(s.run)]);
  if (s.waiting) {
    const reason = REASONS[s.waiting.reason] ?? s.waiting.reason;
    facts.push(['waiting', s.waiting.until === null ? reason : `${reason}, until ${until(s.waiting.until, now)}`]);
  }
  if (s.nextRuns.length > 0)
    facts.push(['next runs', s.nextRuns.map((r) => `${r.mode} ${until(r.at, now)}`).join(', ')]);
  const q = s.queue;
  facts.push(['queue', `waiting ${q.waiting}, active ${q.active}, delayed ${q.delayed}, failed ${q.failed}`]);
  facts.push(['rejected', `${number(s.rejectedOpen)} open`]);
  if (s.limits.length > 0)
    facts.push(['limits', s.limits.map((l) => `${number(l.used)}/${number(l.limit)} per ${l.window}`).join(', ')]);
  if (s.budget) {
    const share = s.budget.limit > 0 ? Math.round((s.budget.used / s.budget.limit) * 100) : 0;
    facts.push([
      'daily budget',
      `${number(s.budget.used)} of ${number(s.budget.limit)} in the last ${duration(s.budget.windowSeconds)} (${share} %)`,
    ]);
  }
  if (s.plan) facts.push(['budget plan', planText(s.plan, now)]);
  if (s.pageSize) facts.push(['page size', pageSizeText(s.pageSize)]);
  facts.push(['429s', `${number(s.recent429)} in the last hour`]);
  facts.push([
    'failures',
    s.consecutiveFailures === 0
      ? 'none since the last success'
      : `${s.consecutiveFailures} in a row${s.lastError ? `; last at ${time(s.lastError.at)}: ${s.lastError.message}` : ''}`,
  ]);
  return facts;
}

/** The budget plan, as `voucher-sync status` words it (src/status/format-status.ts). */
function planText(plan, now) {
  const allowed = `${number(plan.allowedNow)} allowed now, ${number(plan.allowedPerWindow)} per ${duration(plan.windowSeconds)} (${number(plan.reserve)} kept for incremental runs)`;
  if (plan.scans.length === 0) return `nothing pending; reconciliations and backfills: ${allowed}`;
  const needs = plan.scans.map((scan) => `${scan.mode} needs ~${number(scan.requests)} requests`).join(', ');
  const done = plan.expectedCompletionAt === null ? '' : `; done by ${until(plan.expectedCompletionAt, now)}`;
  return `${needs}; ${allowed}${done}`;
}

/** The page size of a list request, as `voucher-sync status` words it (src/status/format-status.ts). */
function pageSizeText(p) {
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

function renderSources(report) {
  const now = Date.parse(report.at);
  const service = $('service');
  service.textContent = report.serviceUp
    ? `service up: ${report.processes.map((p) => `${p.role} ${p.host}:${p.pid}`).join(', ')}`
    : 'service DOWN (no worker heartbeat)';
  service.className = `badge ${report.serviceUp ? 'ok' : 'bad'}`;
  $('updated').textContent = `as of ${time(report.at)}`;
  const cards = report.sources.map((s) => {
    const state = s.configured ? s.state : 'not configured';
    const facts = s.configured ? sourceFacts(s, now) : [['credentials', 'not set: this source is not synced']];
    return el(
      'article',
      { class: 'source', 'data-source': s.source, 'data-state': state },
      el(
        'h2',
        {},
        s.source,
        ' ',
        el('span', { class: `badge state-${state.replace(' ', '-')}` }, state),
        s.stale ? el('span', { class: 'badge bad' }, 'stale') : null,
      ),
      el(
        'dl',
        {},
        facts.map(([label, value]) => [el('dt', {}, label), el('dd', {}, value)]),
      ),
    );
  });
  $('sources').replaceChildren(...cards);
}

// --- charts ---

/**
 * A chart of one or more series, each with its own x (seconds since 1970) and y. Drawn with uPlot on the union of
 * the x values; what each series holds is also written to `data-points` as {label, source, x, y} objects.
 */
function drawChart(figure, { series, yLabel, format, lines = [] }) {
  const caption = figure.querySelector('figcaption');
  figure.dataset.points = JSON.stringify(series.map(({ label, source, x, y }) => ({ label, source, x, y })));
  figure.querySelector('.uplot')?.remove();
  figure.querySelector('.points')?.remove();
  charts.get(figure.id)?.destroy();
  charts.delete(figure.id);
  figure.append(pointsTable(series, format));
  const empty = series.every((s) => s.x.length === 0);
  figure.classList.toggle('empty', empty);
  caption.dataset.empty = empty ? 'no runs in this range' : '';
  if (empty || typeof uPlot === 'undefined') return;
  // The limit lines are constants over the same x values as the series.
  const joined = series.length === 1 ? [series[0].x, series[0].y] : uPlot.join(series.map((s) => [s.x, s.y]));
  for (const line of lines) joined.push(joined[0].map(() => line.value));
  const all = [...series, ...lines.map((line) => ({ ...line, constant: true }))];
  // A limit far above what was used would flatten the data to the axis: it is drawn only when the data comes within
  // half of it (the caption names every limit).
  const dataMax = Math.max(1, ...series.flatMap((s) => s.y.filter((v) => v !== null)));
  const near = lines.filter((line) => dataMax >= line.value / 2).map((line) => line.value);
  const top = Math.max(dataMax * 1.15, ...near.map((v) => v * 1.05));
  const width = Math.max(320, figure.clientWidth - 8);
  const chart = new uPlot(
    {
      width,
      height: 220,
      scales: { x: { time: true }, y: { range: () => [0, top] } },
      axes: [
        {},
        {
          label: yLabel,
          values: (_u, ticks) => ticks.map(format),
          size: 70,
          ...(format === duration && { incrs: DURATION_STEPS }),
        },
      ],
      series: [
        { label: 'time (UTC)', value: (_u, v) => (v === null ? '–' : time(new Date(v * 1000).toISOString())) },
        ...all.map((s, i) => ({
          label: s.label,
          stroke: s.constant ? '#999' : COLORS[i % COLORS.length],
          dash: s.constant ? [6, 4] : undefined,
          width: s.constant ? 1 : 1.5,
          spanGaps: true,
          points: { show: !s.constant },
          value: (_u, v) => (v === null ? '–' : format(v)),
        })),
      ],
    },
    joined,
    figure,
  );
  charts.set(figure.id, chart);
}

/** The drawn points as a table: what a screen reader, a test or a curious person reads. */
function pointsTable(series, format) {
  const rows = series.flatMap((s) =>
    s.x.map((x, i) =>
      el(
        'tr',
        {},
        el('td', {}, s.label),
        el('td', {}, time(new Date(x * 1000).toISOString())),
        el('td', {}, format(s.y[i])),
      ),
    ),
  );
  // In a wrapper: a table is never shorter than its rows, so it cannot be hidden by its own height.
  return el(
    'div',
    { class: 'visually-hidden points' },
    el(
      'table',
      {},
      el('thead', {}, el('tr', {}, el('th', {}, 'series'), el('th', {}, 'time (UTC)'), el('th', {}, 'value'))),
      el('tbody', {}, rows),
    ),
  );
}

const seconds = (iso) => Date.parse(iso) / 1000;

function renderHistory(history) {
  const bucketed = history.sources.filter((s) => s.bucketSeconds > 0);
  $('bucket-note').textContent =
    bucketed.length === 0
      ? 'one point per run'
      : `${bucketed.map((s) => s.source).join(', ')}: runs grouped by ${duration(bucketed[0].bucketSeconds)} (duration: the longest; records: per run on average)`;
  drawChart($('chart-freshness'), {
    yLabel: 'freshness',
    format: duration,
    series: history.sources.map((s) => ({
      label: s.source,
      source: s.source,
      x: s.freshness.map((p) => seconds(p.at)),
      y: s.freshness.map((p) => p.seconds),
    })),
  });
  drawChart($('chart-records'), {
    yLabel: 'records',
    format: number,
    series: history.sources.map((s) => ({
      label: s.source,
      source: s.source,
      x: s.runs.map((p) => seconds(p.at)),
      y: s.runs.map((p) => (p.runs > 1 ? Math.round(p.records / p.runs) : p.records)),
    })),
  });
  drawChart($('chart-duration'), {
    yLabel: 'duration',
    format: duration,
    series: history.sources.map((s) => ({
      label: s.source,
      source: s.source,
      x: s.runs.map((p) => seconds(p.at)),
      y: s.runs.map((p) => p.durationSeconds),
    })),
  });
  const holder = $('request-charts');
  for (const s of history.sources) {
    let figure = $(`chart-requests-${s.source}`);
    if (!figure) {
      figure = el(
        'figure',
        { class: 'chart', id: `chart-requests-${s.source}`, 'data-source': s.source },
        el(
          'figcaption',
          {},
          `${s.source}: requests per hour and in the last 24 hours, against the limits`,
          el('span', { class: 'limits muted' }),
        ),
      );
      holder.append(figure);
    }
    figure.querySelector('.limits').textContent = s.limits.length
      ? ` (${[...s.limits.map((l) => `${number(l.limit)} per ${l.window}`), ...(s.dailyBudget === null ? [] : [`${number(s.dailyBudget)} a day`])].join(', ')})`
      : '';
    const lines = [];
    if (s.hourlyLimit !== null) lines.push({ label: 'hourly limit', value: s.hourlyLimit });
    if (s.dailyBudget !== null) lines.push({ label: 'daily budget', value: s.dailyBudget });
    drawChart(figure, {
      yLabel: 'requests',
      format: number,
      lines,
      series: [
        {
          label: 'per hour',
          source: s.source,
          x: s.requests.map((p) => seconds(p.hour)),
          y: s.requests.map((p) => p.requests),
        },
        ...(s.dailyBudget === null
          ? []
          : [
              {
                label: 'last 24 h',
                source: s.source,
                x: s.requests.map((p) => seconds(p.hour)),
                y: s.requests.map((p) => p.rolling24h),
              },
            ]),
      ],
    });
  }
  renderRuns(history.recentRuns);
  renderRejected(history.rejected);
}

function renderRuns(runs) {
  const rows = runs.map((r) => {
    const note = [
      r.runId !== r.id ? `part of run ${r.runId}` : '',
      r.waitingReason
        ? `${REASONS[r.waitingReason] ?? r.waitingReason}${r.waitingUntil ? ` until ${time(r.waitingUntil)}` : ''}`
        : '',
      r.error ?? '',
      r.warnings.join('; '),
    ]
      .filter(Boolean)
      .join(' — ');
    return el(
      'tr',
      { 'data-run': r.id, class: `status-${r.status}` },
      el('td', {}, r.id),
      el('td', {}, r.source),
      el('td', {}, r.mode),
      el('td', {}, r.status),
      el('td', {}, time(r.startedAt)),
      el('td', { class: 'n' }, duration(r.durationSeconds)),
      el('td', { class: 'n' }, number(r.records)),
      el('td', { class: 'n' }, number(r.inserted)),
      el('td', { class: 'n' }, number(r.updated)),
      el('td', { class: 'n' }, number(r.deleted)),
      el('td', { class: 'n' }, number(r.rejected)),
      el('td', { class: 'n' }, number(r.requests)),
      el('td', { class: 'note' }, note),
    );
  });
  $('runs').tBodies[0].replaceChildren(
    ...(rows.length ? rows : [el('tr', {}, el('td', { colspan: 13 }, 'no runs yet'))]),
  );
}

function renderRejected(records) {
  const rows = records.map((r) =>
    el(
      'tr',
      { 'data-rejected': r.id },
      el('td', {}, r.source),
      el('td', {}, r.sourceId ?? '(unreadable)'),
      el('td', {}, r.reason),
      el('td', { class: 'n' }, number(r.timesSeen)),
      el('td', {}, time(r.lastRejectedAt)),
    ),
  );
  $('rejected').tBodies[0].replaceChildren(
    ...(rows.length ? rows : [el('tr', {}, el('td', { colspan: 5 }, 'none: every record read was stored'))]),
  );
}

// --- refreshing, and the token ---

function showProblem(error) {
  const problem = $('problem');
  problem.hidden = !error;
  problem.textContent = error ? `Could not refresh: ${error.message}` : '';
}

async function refresh(what) {
  try {
    if (what === 'status') renderSources(await api('/api/status'));
    else renderHistory(await api(`/api/history?days=${encodeURIComponent($('days').value)}`));
    showProblem(null);
    document.body.dataset[`${what}Loaded`] = 'true';
  } catch (error) {
    if (error instanceof Unauthorized) return askForToken(token ? 'That token was refused.' : '');
    showProblem(error);
  }
}

function start() {
  $('login').hidden = true;
  $('content').hidden = false;
  $('logout').hidden = !token;
  clearInterval(statusTimer);
  clearInterval(historyTimer);
  void refresh('status');
  void refresh('history');
  statusTimer = setInterval(() => void refresh('status'), STATUS_EVERY_MS);
  historyTimer = setInterval(() => void refresh('history'), HISTORY_EVERY_MS);
}

function askForToken(message) {
  clearInterval(statusTimer);
  clearInterval(historyTimer);
  token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  $('content').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = message;
  $('token').focus();
}

$('login').addEventListener('submit', async (event) => {
  event.preventDefault();
  const given = $('token').value.trim();
  try {
    // The session cookie this sets lets the browser open /queues and /metrics, which cannot send the header.
    await fetch('/api/session', { method: 'POST', headers: { Authorization: `Bearer ${given}` } }).then((r) => {
      if (r.status === 401) throw new Unauthorized();
      if (!r.ok) throw new Error(`${r.status}`);
    });
  } catch (error) {
    $('login-error').textContent =
      error instanceof Unauthorized ? 'That token was refused.' : `Could not log in: ${error.message}`;
    return;
  }
  token = given;
  sessionStorage.setItem(TOKEN_KEY, token);
  $('token').value = '';
  start();
});

$('logout').addEventListener('click', async () => {
  await fetch('/api/session', { method: 'DELETE' }).catch(() => undefined);
  askForToken('');
});

$('days').addEventListener('change', () => void refresh('history'));

let resizeTimer;
window.addEventListener('resize', () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => {
    for (const [id, chart] of charts) chart.setSize({ width: Math.max(320, $(id).clientWidth - 8), height: 220 });
  }, 200);
});

start();
