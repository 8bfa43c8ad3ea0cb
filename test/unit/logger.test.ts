import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, type LogFormat } from '../../src/logger.ts';
import { registerSecret } from '../../src/secrets.ts';

function capture(format?: LogFormat) {
  const lines: string[] = [];
  const logger = createLogger(
    'debug',
    new Writable({ write: (chunk, _enc, done) => (lines.push(String(chunk)), done()) }),
    format ? { format } : {},
  );
  return { logger, lines };
}

/** The keys of a JSON line in the order written, duplicates included (JSON.parse would hide them). */
function keysOf(line: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  for (const match of line.matchAll(/"((?:[^"\\]|\\.)*)"(\s*:)?|[{}[\]]/g)) {
    if (match[0] === '{' || match[0] === '[') depth++;
    else if (match[0] === '}' || match[0] === ']') depth--;
    else if (match[2] && depth === 1) keys.push(match[1]!);
  }
  return keys;
}

describe('the logger', () => {
  it('writes each key once, however many child loggers bind the same source and job', () => {
    const { logger, lines } = capture();
    // As the service does: the process, a source's client, the job, the run.
    const source = logger.child({ source: 'cin7' });
    const job = source.child({ source: 'cin7', jobId: 'cli-full-1' });
    const run = job.child({ source: 'cin7', stream: 'vouchers', runId: '12', jobId: 'cli-full-1' });
    run.info({ pages: 3 }, 'run in progress');
    const keys = keysOf(lines[0]!);
    expect(keys.filter((key, i) => keys.indexOf(key) !== i)).toEqual([]);
    expect(JSON.parse(lines[0]!)).toMatchObject({
      source: 'cin7',
      jobId: 'cli-full-1',
      stream: 'vouchers',
      runId: '12',
      pages: 3,
    });
  });

  it('keeps a binding a child changes', () => {
    const { logger, lines } = capture();
    logger.child({ runId: '1' }).child({ runId: '2' }).info('resumed');
    expect(JSON.parse(lines[0]!).runId).toBe('2');
  });

  it('writes times in ISO 8601', () => {
    const { logger, lines } = capture();
    logger.info('hello');
    const { time } = JSON.parse(lines[0]!) as { time: string };
    expect(time).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    expect(Math.abs(Date.parse(time) - Date.now())).toBeLessThan(60_000);
  });

  it('pretty output is one readable line, without JSON, with the secrets scrubbed', () => {
    const secret = 'pretty-secret-4f8a';
    registerSecret(secret);
    const { logger, lines } = capture('pretty');
    logger.child({ source: 'cin7' }).warn({ detail: `the server echoed ${secret}` }, `login failed with ${secret}`);
    const text = lines.join('');
    expect(text).not.toContain(secret);
    expect(text).toContain('[redacted]');
    expect(text).toMatch(/WARN/);
    expect(text).toContain('login failed with [redacted]');
    expect(text).toContain('source');
    expect(text).not.toMatch(/"level":/);
    // Its time is the line's ISO time, as written.
    expect(text).toMatch(/\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z/);
  });

  it('json output scrubs secrets too', () => {
    const secret = 'json-secret-77c1';
    registerSecret(secret);
    const { logger, lines } = capture('json');
    logger.error({ err: new Error(`boom ${secret}`) }, 'failed');
    expect(lines.join('')).not.toContain(secret);
  });
});
