import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { runOnce } from '../../jobs/run-once.ts';
import { startService, type Service } from '../../jobs/service.ts';
import { renderMetrics } from '../../src/metrics/render-metrics.ts';
import { RECORD_OUTCOMES } from '../../src/metrics/registry.ts';
import { readStatus } from '../../src/status/read-status.ts';
import type { SourceStatus, StatusReport } from '../../src/status/types.ts';
import { createHarness, REDIS_URL, type Harness } from '../helpers/sync-harness.ts';
import type { Behaviour } from '../hostile/hostile-server.ts';
import { sourceStatus } from '../helpers/source-status.ts';

const PROMTOOL = ['/usr/bin/promtool', '/usr/local/bin/promtool'].find((path) => existsSync(path));
// Debian's prometheus package brings promtool; .ci/run installs it. Without it these checks skip, except in CI.
const withPromtool = PROMTOOL !== undefined || process.env.CI === 'true';

function promtool(args: string[], input?: string) {
  if (!PROMTOOL) throw new Error('promtool is missing: apt-get install prometheus (CI=true requires it)');
  return spawnSync(PROMTOOL, args, { input, encoding: 'utf8' });
}

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The exposition text as samples, and the families it declares (`# TYPE`). */
function parseMetrics(text: string): { samples: Sample[]; families: Map<string, string> } {
  const samples: Sample[] = [];
  const families = new Map<string, string>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) families.set(type[1]!, type[2]!);
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) throw new Error(`unreadable sample line: ${line}`);
    const labels = Object.fromEntries(
      [...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]),
    );
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return { samples, families };
}

/** The sum of the series of `name` whose labels include `labels`. */
function total(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

const series = (samples: Sample[], name: string, labels: Record<string, string> = {}) =>
  samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));

let h: Harness | undefined;
let service: Service | undefined;

afterEach(async () => {
  await service?.stop();
  service = undefined;
  await h?.close();
  h = undefined;
});

const forbidden: Behaviour = ({ response }) => {
  response.writeHead(403, { 'content-type': 'application/json' });
  response.end('{"error":"forbidden"}');
  return undefined;
};
const hangUp: Behaviour = ({ response }) => {
  response.socket?.destroy();
  return undefined;
};
const neverAnswer: Behaviour = () => new Promise<undefined>(() => undefined);

describe('/metrics after real runs through the queues', () => {
  it('counts runs, records and requests as the ledger records them, and serves the state of each source', async () => {
    h = await createHarness({
      hostile: true,
      env: {
        CIN7_DAILY_BUDGET: '100000',
        JOB_ATTEMPTS: '1',
        HTTP_RETRIES: '1',
        HTTP_READ_TIMEOUT: '1s',
        HTTP_REQUEST_TIMEOUT: '2s',
      },
    });
    const before = parseMetrics((await renderMetrics({ role: 'worker', queues: [] })).body).samples;
    service = await startService(h.config, h.logger, { schedulers: false });
    const once = (mode: 'incremental' | 'full') => runOnce(service!, REDIS_URL, h!.prefix, mode, 'cli');
    expect((await once('incremental')).every((o) => o.ok)).toBe(true);
    expect((await once('full')).every((o) => o.ok)).toBe(true);
    // Three ways for cin7 to fail: refused (no retry), the connection dropped, no answer at all.
    for (const behaviour of [forbidden, hangUp, neverAnswer]) {
      h.hostile.cin7.set(behaviour);
      const outcomes = await once('incremental');
      expect(outcomes.find((o) => o.source === 'cin7')!.ok).toBe(false);
    }
    h.hostile.cin7.set(null);

    const report = await readStatus({ db: h.db, redis: h.redis, config: h.config });
    const queues = [...service.queues.values()];
    const { body, contentType } = await renderMetrics({ role: 'all', readStatus: async () => report, queues });
    expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    const after = parseMetrics(body).samples;
    const delta = (name: string, labels: Record<string, string>) =>
      total(after, name, labels) - total(before, name, labels);

    const runs = await h.db.syncRun.findMany({ orderBy: { id: 'asc' } });
    expect(runs.filter((r) => r.status === 'failed')).toHaveLength(3);
    for (const source of ['carecloud', 'cin7']) {
      const own = runs.filter((r) => r.source === source);
      for (const outcome of RECORD_OUTCOMES) {
        const inLedger = own.reduce((sum, r) => sum + r[outcome], 0);
        expect(delta('voucher_sync_records_total', { source, outcome }), `${source} ${outcome}`).toBe(inLedger);
      }
      expect(delta('voucher_sync_records_total', { source, outcome: 'inserted' })).toBeGreaterThan(0);
      for (const key of new Set(own.map((r) => `${r.mode}/${r.status}`))) {
        const [mode, status] = key.split('/') as [string, string];
        const group = own.filter((r) => r.mode === mode && r.status === status);
        const labels = { source, mode, status };
        expect(delta('voucher_sync_run_duration_seconds_count', labels), `${source} ${key}`).toBe(group.length);
        const seconds = group.reduce((sum, r) => sum + (r.finishedAt!.getTime() - r.startedAt.getTime()) / 1000, 0);
        expect(delta('voucher_sync_run_duration_seconds_sum', labels)).toBeCloseTo(seconds, 3);
      }
      // Every attempt the ledger counted as an API call got an answer, a dropped connection or a timeout.
      const apiCalls = own.reduce((sum, r) => sum + r.apiCalls, 0);
      expect(delta('voucher_sync_api_requests_total', { source }), `${source} requests`).toBe(apiCalls);
      expect(delta('voucher_sync_api_requests_total', { source, status: '200' })).toBeGreaterThan(0);
      expect(delta('voucher_sync_rate_limit_wait_seconds_total', { source })).toBeGreaterThan(0);
    }
    expect(delta('voucher_sync_run_duration_seconds_count', { source: 'cin7', status: 'failed' })).toBe(3);
    expect(delta('voucher_sync_api_requests_total', { source: 'cin7', status: '403' })).toBe(1);
    expect(delta('voucher_sync_api_requests_total', { source: 'cin7', status: 'network_error' })).toBe(2);
    expect(delta('voucher_sync_api_requests_total', { source: 'cin7', status: 'timeout' })).toBe(2);

    // What the scheduler reads from Postgres and Redis, against the ledger.
    const gaugeOf = (name: string, source: string) => {
      const found = series(after, name, { source });
      expect(found, `${name}{source="${source}"}`).toHaveLength(1);
      return found[0]!.value;
    };
    for (const source of ['carecloud', 'cin7']) {
      const own = runs.filter((r) => r.source === source);
      const lastSuccess = Math.max(...own.filter((r) => r.status === 'succeeded').map((r) => r.finishedAt!.getTime()));
      expect(gaugeOf('voucher_sync_last_success_timestamp_seconds', source)).toBe(lastSuccess / 1000);
      const lastIncremental = own.filter((r) => r.status === 'succeeded' && r.mode === 'incremental').at(-1)!;
      const freshness = (Date.parse(report.at) - lastIncremental.startedAt.getTime()) / 1000;
      expect(gaugeOf('voucher_sync_freshness_seconds', source)).toBeCloseTo(freshness, -1);
      expect(gaugeOf('voucher_sync_rejected_records', source)).toBe(
        await h.db.rejectedRecord.count({ where: { source } }),
      );
      expect(gaugeOf('voucher_sync_stale', source)).toBe(0);
    }
    expect(gaugeOf('voucher_sync_consecutive_failures', 'cin7')).toBe(3);
    expect(gaugeOf('voucher_sync_consecutive_failures', 'carecloud')).toBe(0);
    expect(total(after, 'voucher_sync_source_state', { source: 'cin7', state: 'failing' })).toBe(1);
    // Every request of this test took a slot of cin7's daily budget, and the ledger counted each.
    const cin7Calls = runs.filter((r) => r.source === 'cin7').reduce((sum, r) => sum + r.apiCalls, 0);
    expect(gaugeOf('voucher_sync_budget_used', 'cin7')).toBe(cin7Calls);
    expect(gaugeOf('voucher_sync_budget_limit', 'cin7')).toBe(100_000);
    expect(series(after, 'voucher_sync_budget_used', { source: 'carecloud' })).toHaveLength(0);
    expect(total(after, 'voucher_sync_service_up')).toBe(1);
    expect(total(after, 'voucher_sync_status_readable')).toBe(1);
    // BullMQ's export, one family for both queues.
    const cin7Counts = await service.queues.get('cin7')!.getJobCounts();
    expect(total(after, 'bullmq_jobs', { queue: 'cin7', state: 'failed' })).toBe(cin7Counts.failed);
    expect(total(after, 'bullmq_jobs', { queue: 'cin7', state: 'failed' })).toBe(3);
    expect(total(after, 'bullmq_jobs', { queue: 'carecloud', state: 'completed' })).toBe(5);
    expect(body.match(/^# TYPE bullmq_jobs /gm)).toHaveLength(1);

    if (withPromtool) {
      const checked = promtool(['check', 'metrics'], body);
      expect(checked.stdout + checked.stderr).toBe('');
      expect(checked.status).toBe(0);
    }
  });
});

function statusOf(source: string, overrides: Partial<SourceStatus> = {}): SourceStatus {
  return sourceStatus(source, {
    rejectedOpen: 2,
    limits: [{ window: '1s', windowSeconds: 1, used: 1, limit: 3 }],
    budget: { used: 4200, limit: 5000, windowSeconds: 86_400 },
    ...overrides,
  });
}

const report: StatusReport = {
  at: '2026-12-01T10:01:00.000Z',
  serviceUp: true,
  processes: [{ id: 'a', role: 'worker', host: 'h', pid: 1, sources: ['cin7'], startedAt: '2026-12-01T09:00:00.000Z' }],
  sources: [statusOf('cin7'), statusOf('carecloud', { budget: null }), statusOf('third', { configured: false })],
};

describe('renderMetrics by role', () => {
  it('serves the shared state in the scheduler role and all, never in a worker', async () => {
    let reads = 0;
    const read = async () => (reads++, report);
    const worker = parseMetrics((await renderMetrics({ role: 'worker', readStatus: read, queues: [] })).body);
    expect(reads).toBe(0);
    expect(worker.families.has('voucher_sync_freshness_seconds')).toBe(false);
    expect(worker.families.has('voucher_sync_budget_used')).toBe(false);
    expect(worker.families.get('voucher_sync_api_requests_total')).toBe('counter');
    expect(worker.families.has('process_cpu_seconds_total')).toBe(true);
    expect(total(worker.samples, 'voucher_sync_up', { role: 'worker' })).toBe(1);

    const scheduler = parseMetrics((await renderMetrics({ role: 'scheduler', readStatus: read, queues: [] })).body);
    expect(reads).toBe(1);
    expect(total(scheduler.samples, 'voucher_sync_freshness_seconds', { source: 'cin7' })).toBe(60);
    expect(total(scheduler.samples, 'voucher_sync_stale_after_seconds', { source: 'cin7' })).toBe(1200);
    expect(total(scheduler.samples, 'voucher_sync_last_success_timestamp_seconds', { source: 'cin7' })).toBe(
      Date.parse('2026-12-01T10:00:00.000Z') / 1000,
    );
    // A source that is not configured has no series: it would look stale or failing for ever.
    expect(series(scheduler.samples, 'voucher_sync_freshness_seconds', { source: 'third' })).toHaveLength(0);
  });

  it('still answers when the status cannot be read, saying so', async () => {
    const errors: unknown[] = [];
    const { body } = await renderMetrics({
      role: 'all',
      readStatus: () => Promise.reject(new Error('Postgres is down')),
      queues: [],
      onError: (error) => errors.push(error),
    });
    const { samples } = parseMetrics(body);
    expect(total(samples, 'voucher_sync_status_readable')).toBe(0);
    expect(total(samples, 'voucher_sync_up', { role: 'all' })).toBe(1);
    expect(errors).toHaveLength(1);
  });
});

describe('deploy/prometheus/alerts.yml', () => {
  const file = 'deploy/prometheus/alerts.yml';

  it.skipIf(!withPromtool)('passes promtool check rules', () => {
    const checked = promtool(['check', 'rules', file]);
    expect(checked.stderr).toBe('');
    expect(checked.status).toBe(0);
  });

  it.skipIf(!withPromtool)(
    'fires on the series of a troubled installation, naming the source (promtool test rules)',
    () => {
      const series = {
        'voucher_sync_consecutive_failures{source="cin7"}': '0 3x19',
        'voucher_sync_consecutive_failures{source="carecloud"}': '2x19',
        'voucher_sync_budget_used{source="cin7"}': '4100x19',
        'voucher_sync_budget_limit{source="cin7"}': '5000x19',
        'voucher_sync_stale{source="cin7"}': '1x19',
        'voucher_sync_stale{source="carecloud"}': '0x19',
        'voucher_sync_freshness_seconds{source="cin7"}': '7200+300x19',
        'voucher_sync_rejected_records{source="cin7"}': '2x12 5x6',
        'voucher_sync_rejected_records{source="carecloud"}': '4x19',
        'voucher_sync_status_readable{instance="s:9400", job="voucher-sync"}': '1x19',
        'up{instance="s:9400", job="voucher-sync"}': '1x19',
        'up{instance="w:9401", job="voucher-sync-workers"}': '0x19',
      };
      const alert = (alertname: string, labels: Record<string, string>, summary: string, description: string) => ({
        eval_time: '95m',
        alertname,
        exp_alerts: [{ exp_labels: labels, exp_annotations: { summary, description } }],
      });
      const tests = {
        rule_files: [resolve(file)],
        evaluation_interval: '1m',
        tests: [
          {
            interval: '5m',
            input_series: Object.entries(series).map(([name, values]) => ({ series: name, values })),
            alert_rule_test: [
              alert(
                'VoucherSyncSourceFailing',
                { severity: 'critical', source: 'cin7' },
                'voucher-sync: cin7 is failing',
                '3 runs of cin7 failed in a row since its last success. `npm run status -- --json` shows the last error; failed runs are in sync_runs.',
              ),
              alert(
                'VoucherSyncDailyBudgetHigh',
                { severity: 'warning', source: 'cin7' },
                'voucher-sync: cin7 used over 80 % of its daily API budget',
                'cin7 has used 82% of its daily request budget (rolling 24 h). Runs wait when it is spent; a full scan or a backfill may be the cause.',
              ),
              alert(
                'VoucherSyncSourceStale',
                { severity: 'warning', source: 'cin7' },
                'voucher-sync: cin7 is stale',
                'The newest data of cin7 is 3h 35m 0s old: more than its schedule plus ALERT_STALE_AFTER allows. `npm run status` shows its state and last error.',
              ),
              alert(
                'VoucherSyncRejectedRecordsGrowing',
                { severity: 'warning', source: 'cin7' },
                'voucher-sync: rejected records of cin7 are growing',
                'cin7 has 3 more rejected records than an hour ago (table rejected_records, with the reason of each). The rest of their pages were stored.',
              ),
              alert(
                'VoucherSyncNoWorker',
                { severity: 'critical' },
                'voucher-sync: no worker process has sent a heartbeat',
                'No worker (role worker or all) has sent a heartbeat for 5 minutes: scheduled runs queue up and nothing is synced.',
              ),
              alert(
                'VoucherSyncTargetDown',
                { severity: 'critical', instance: 'w:9401', job: 'voucher-sync-workers' },
                'voucher-sync: w:9401 is down',
                'Prometheus could not scrape w:9401 (job voucher-sync-workers) for 5 minutes.',
              ),
              { eval_time: '95m', alertname: 'VoucherSyncNoScheduler', exp_alerts: [] },
              { eval_time: '95m', alertname: 'VoucherSyncStatusUnreadable', exp_alerts: [] },
            ],
          },
        ],
      };
      const dir = mkdtempSync(join(tmpdir(), 'alerts-test-'));
      try {
        writeFileSync(join(dir, 'tests.yml'), toYaml(tests));
        const checked = promtool(['test', 'rules', join(dir, 'tests.yml')]);
        expect(checked.stdout + checked.stderr).not.toContain('FAILED');
        expect(checked.status).toBe(0);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );

  it('uses only metrics the service exports, and names the source in every per-source summary', async () => {
    const { groups } = parseYaml(readFileSync(file, 'utf8')) as {
      groups: { rules: { alert: string; expr: string; for?: string; annotations: Record<string, string> }[] }[];
    };
    const rules = groups.flatMap((g) => g.rules);
    expect(rules.map((r) => r.alert)).toEqual(
      expect.arrayContaining([
        'VoucherSyncSourceStale',
        'VoucherSyncSourceFailing',
        'VoucherSyncDailyBudgetHigh',
        'VoucherSyncRejectedRecordsGrowing',
        'VoucherSyncNoWorker',
        'VoucherSyncTargetDown',
      ]),
    );
    const { families, samples } = parseMetrics(
      (await renderMetrics({ role: 'all', readStatus: async () => report, queues: [] })).body,
    );
    for (const rule of rules) {
      expect(rule.for, rule.alert).toBeDefined();
      const used =
        `${rule.expr} ${Object.values(rule.annotations).join(' ')}`.match(/\bvoucher_sync_[a-z0-9_]+/g) ?? [];
      for (const name of used) {
        expect(families.has(name), `${rule.alert} uses ${name}`).toBe(true);
        expect(
          samples.some((s) => s.name === name),
          `${rule.alert}: ${name} has a series`,
        ).toBe(true);
      }
      if (rule.expr.includes('source') || /voucher_sync_(stale|consecutive|budget|rejected)/.test(rule.expr))
        expect(rule.annotations.summary, rule.alert).toContain('{{ $labels.source }}');
    }
  });
});
