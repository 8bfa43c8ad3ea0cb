import { describe, expect, it } from 'vitest';
import { loadConfig, parseSize } from '../../src/config.ts';
import { ConfigError } from '../../src/errors.ts';

function problems(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.message;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('the HTTP settings', () => {
  it('parses sizes in bytes, kB, MB and GB (binary multiples)', () => {
    expect(parseSize('512kB')).toBe(512 * 1024);
    expect(parseSize('16MB')).toBe(16 * 1024 ** 2);
    expect(parseSize('1.5 mb')).toBe(1.5 * 1024 ** 2);
    expect(parseSize('70000')).toBe(70_000);
    expect(parseSize('2MiB')).toBe(2 * 1024 ** 2);
    expect(parseSize('lots')).toBeUndefined();
    expect(parseSize('-1MB')).toBeUndefined();
  });

  it('reads HTTP_MAX_RESPONSE_SIZE and HTTP_REQUEST_TIMEOUT', () => {
    const config = loadConfig({ HTTP_MAX_RESPONSE_SIZE: '4MB', HTTP_REQUEST_TIMEOUT: '5m' });
    expect(config.http).toMatchObject({ maxResponseBytes: 4 * 1024 ** 2, requestTimeoutMs: 300_000 });
  });

  it('names a bad value, one line each', () => {
    expect(problems({ HTTP_MAX_RESPONSE_SIZE: 'huge' })).toBe(
      'HTTP_MAX_RESPONSE_SIZE must be a size from 64kB to 128MB, such as 512kB or 16MB (got "huge")',
    );
    expect(problems({ HTTP_MAX_RESPONSE_SIZE: '1GB' })).toContain(
      'HTTP_MAX_RESPONSE_SIZE must be a size from 64kB to 128MB',
    );
    expect(problems({ HTTP_REQUEST_TIMEOUT: 'soon' })).toBe(
      'HTTP_REQUEST_TIMEOUT must be a duration such as 30s, 10m, 1h or 7d (got "soon")',
    );
    expect(problems({ HTTP_REQUEST_TIMEOUT: '10s' })).toBe(
      'HTTP_REQUEST_TIMEOUT must be at least HTTP_READ_TIMEOUT (got 10s and 30s)',
    );
  });
});
