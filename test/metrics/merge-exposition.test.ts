import { describe, expect, it } from 'vitest';
import { mergeExposition } from '../../src/metrics/merge-exposition.ts';

// What BullMQ's queue.exportPrometheusMetrics() prints for one queue.
const queueBlock = (queue: string, waiting: number) =>
  [
    '# HELP bullmq_job_count Number of jobs in the queue by state',
    '# TYPE bullmq_job_count gauge',
    `bullmq_job_count{queue="${queue}", state="waiting"} ${waiting}`,
    `bullmq_job_count{queue="${queue}", state="active"} 0`,
    '# HELP bullmq_job_completed_total Total number of completed jobs',
    '# TYPE bullmq_job_completed_total counter',
    `bullmq_job_completed_total{queue="${queue}"} 7`,
  ].join('\n');

const count = (text: string, line: string) => text.split('\n').filter((l) => l === line).length;

describe('mergeExposition', () => {
  it('declares each family once, with the samples of every queue under it', () => {
    const merged = mergeExposition([queueBlock('cin7', 3), queueBlock('carecloud', 5)]);
    expect(count(merged, '# TYPE bullmq_job_count gauge')).toBe(1);
    expect(count(merged, '# HELP bullmq_job_count Number of jobs in the queue by state')).toBe(1);
    expect(count(merged, '# TYPE bullmq_job_completed_total counter')).toBe(1);
    const lines = merged.trimEnd().split('\n');
    const familyStart = lines.indexOf('# TYPE bullmq_job_count gauge');
    expect(lines.slice(familyStart + 1, familyStart + 5)).toEqual([
      'bullmq_job_count{queue="cin7", state="waiting"} 3',
      'bullmq_job_count{queue="cin7", state="active"} 0',
      'bullmq_job_count{queue="carecloud", state="waiting"} 5',
      'bullmq_job_count{queue="carecloud", state="active"} 0',
    ]);
  });

  it('keeps a histogram family whole and a series met twice once', () => {
    const histogram = [
      '# HELP run_seconds Runs.',
      '# TYPE run_seconds histogram',
      'run_seconds_bucket{le="1"} 1',
      'run_seconds_bucket{le="+Inf"} 2',
      'run_seconds_sum 3.5',
      'run_seconds_count 2',
    ].join('\n');
    const merged = mergeExposition([histogram, '# TYPE up gauge\nup 1', '# TYPE up gauge\nup 1']);
    expect(merged).toBe(`${histogram}\n# TYPE up gauge\nup 1\n`);
  });

  it('serves a family under another name, and leaves out those dropped', () => {
    const merged = mergeExposition([queueBlock('cin7', 3)], {
      rename: { bullmq_job_count: 'bullmq_jobs' },
      drop: ['bullmq_job_completed_total'],
    });
    expect(merged).toBe(
      [
        '# HELP bullmq_jobs Number of jobs in the queue by state',
        '# TYPE bullmq_jobs gauge',
        'bullmq_jobs{queue="cin7", state="waiting"} 3',
        'bullmq_jobs{queue="cin7", state="active"} 0',
        '',
      ].join('\n'),
    );
  });
});
