import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { loadConfig, parseDuration, parseRateWindows, secretVariables } from '../../src/config.ts';
import { sourceNames, sources } from '../../src/sources/index.ts';
import { ConfigError } from '../../src/errors.ts';

const cin7 = { CIN7_USERNAME: 'user', CIN7_API_KEY: 'k3y-s3cret' };
const careCloud = {
  CARECLOUD_BASE_URL: 'https://example.crmcarecloud.com/webservice/rest-api/enterprise-interface/v1.0',
  CARECLOUD_LOGIN: 'api',
  CARECLOUD_PASSWORD: 'pa55-s3cret',
  CARECLOUD_APP_ID: 'app-s3cret',
  CARECLOUD_TIMEZONE: 'Europe/Prague',
};

function errorOf(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('applies the documented defaults and leaves unconfigured sources out', () => {
    const config = loadConfig({});
    expect(config.sources.carecloud).toBeNull();
    expect(config.sources.cin7).toBeNull();
    expect(config.databaseUrl.reveal()).toBe('postgresql://postgres@localhost:5432/voucher_sync');
    expect(config.http).toEqual({
      connectTimeoutMs: 10_000,
      readTimeoutMs: 30_000,
      retries: 4,
      maxInlineWaitMs: 30_000,
      retryBackoffMs: 1000,
      requestTimeoutMs: 120_000,
      maxResponseBytes: 16 * 1024 ** 2,
    });
  });

  it('enables Cin7 with its reported limits and daily budget', () => {
    const config = loadConfig(cin7);
    expect(config.sources.cin7).toMatchObject({
      pageSize: 250,
      lookbackMs: 600_000,
      schedule: { every: 300_000 },
      reconcileSchedule: { pattern: '0 3 * * *' },
      limits: {
        windows: [
          { max: 3, windowMs: 1000 },
          { max: 60, windowMs: 60_000 },
        ],
        dailyBudget: 5000,
      },
    });
  });

  it('names the variable, the rule and the value that is wrong', () => {
    expect(errorOf({ ...cin7, CIN7_PAGE_SIZE: '500' })).toBe(
      'CIN7_PAGE_SIZE must be a whole number from 1 to 250 (got "500")',
    );
    expect(errorOf({ CIN7_RATE_LIMIT: 'fast' })).toBe(
      'CIN7_RATE_LIMIT must be a list of limits such as 3/s,60/min (got "fast")',
    );
    expect(errorOf({ CARECLOUD_TIMEZONE: 'Mars/Olympus' })).toContain(
      'CARECLOUD_TIMEZONE must be an IANA time zone such as Europe/Prague (got "Mars/Olympus")',
    );
    expect(errorOf({ CIN7_SCHEDULE: 'sometimes' })).toContain('CIN7_SCHEDULE must be a duration of at least 1s');
  });

  it('reads the reporting time zone and the history retention, and names what is wrong with them', () => {
    expect(loadConfig({}).reporting).toEqual({ timezone: 'UTC', historyRetentionMs: null });
    expect(loadConfig({ REPORTING_TIMEZONE: 'Asia/Kolkata', HISTORY_RETENTION: '400d' }).reporting).toEqual({
      timezone: 'Asia/Kolkata',
      historyRetentionMs: 400 * 86_400_000,
    });
    expect(loadConfig({ HISTORY_RETENTION: 'off' }).reporting.historyRetentionMs).toBeNull();
    expect(errorOf({ REPORTING_TIMEZONE: 'Europe/Atlantis' })).toBe(
      'REPORTING_TIMEZONE must be an IANA time zone such as Europe/Prague (got "Europe/Atlantis")',
    );
    expect(errorOf({ HISTORY_RETENTION: 'forever' })).toBe(
      'HISTORY_RETENTION must be a duration of at least 1h, such as 90d or 400d, or off (got "forever")',
    );
    expect(errorOf({ HISTORY_RETENTION: '5m' })).toContain('HISTORY_RETENTION must be a duration of at least 1h');
  });

  it('refuses an operator endpoint open to the network without a token, and never shows the token', () => {
    expect(loadConfig({}).server).toEqual({ port: null, host: '127.0.0.1', token: null });
    expect(errorOf({ HTTP_PORT: '8080', HTTP_HOST: '0.0.0.0' })).toBe(
      'HTTP_HOST is not a loopback address, so HTTP_TOKEN must be set: the endpoint would be open to the network (got "0.0.0.0")',
    );
    for (const host of ['127.0.0.1', '::1', 'localhost'])
      expect(loadConfig({ HTTP_PORT: '8080', HTTP_HOST: host }).server.port).toBe(8080);
    const open = loadConfig({ HTTP_PORT: '8080', HTTP_HOST: '0.0.0.0', HTTP_TOKEN: 'a-token-of-twenty-chars' });
    expect(open.server.token?.reveal()).toBe('a-token-of-twenty-chars');
    expect(JSON.stringify(open)).not.toContain('a-token-of-twenty-chars');
    expect(errorOf({ HTTP_TOKEN: 'short-secret' })).toBe('HTTP_TOKEN must be at least 16 characters');
    expect(errorOf({ HTTP_PORT: '70000' })).toBe('HTTP_PORT must be a whole number from 1 to 65535 (got "70000")');
    expect(errorOf({ LOG_FORMAT: 'xml' })).toBe('LOG_FORMAT must be json or pretty (got "xml")');
  });

  it('checks a cron pattern as the Job Schedulers will read it, naming the variable and the field', () => {
    expect(errorOf({ CARECLOUD_SCHEDULE: '61 * * * *' })).toBe(
      'CARECLOUD_SCHEDULE is not a valid cron pattern: Constraint error, got value 61 expected range 0-59 (got "61 * * * *")',
    );
    expect(errorOf({ CIN7_RECONCILE_SCHEDULE: '0 25 * * *' })).toContain(
      'CIN7_RECONCILE_SCHEDULE is not a valid cron pattern: Constraint error, got value 25 expected range 0-23',
    );
    expect(
      loadConfig({ ...cin7, CIN7_RECONCILE_SCHEDULE: '*/10 2-4 * * 1-5' }).sources.cin7?.reconcileSchedule,
    ).toEqual({
      pattern: '*/10 2-4 * * 1-5',
    });
  });

  it('says which credentials are missing when a source is half configured', () => {
    expect(errorOf({ CARECLOUD_LOGIN: 'api' })).toBe(
      'CARECLOUD_BASE_URL, CARECLOUD_PASSWORD, CARECLOUD_APP_ID, CARECLOUD_TIMEZONE must be set to sync carecloud (CARECLOUD_LOGIN is set)',
    );
  });

  it('never prints a secret, in an error or when the config is logged', () => {
    const message = errorOf({ DATABASE_URL: 'mysql://admin:hunter2@db/x' });
    expect(message).toBe('DATABASE_URL must be a URL starting with postgres:// or postgresql://');
    const config = loadConfig({ ...cin7, ...careCloud });
    const printed = JSON.stringify(config) + inspect(config, { depth: 10 });
    for (const secret of ['k3y-s3cret', 'pa55-s3cret', 'app-s3cret']) expect(printed).not.toContain(secret);
    expect(config.sources.cin7?.apiKey.reveal()).toBe('k3y-s3cret');
  });

  it('finds the CareCloud page size at run time by default, up to 1000, and takes a number as it is', () => {
    expect(loadConfig(careCloud).sources.carecloud).toMatchObject({
      pageSize: 1000,
      findPageSize: true,
      pageOverlap: 5,
      limits: { recordsPerRequest: 1000 },
    });
    expect(loadConfig({ ...careCloud, CARECLOUD_PAGE_SIZE: 'Auto' }).sources.carecloud?.findPageSize).toBe(true);
    expect(loadConfig({ ...careCloud, CARECLOUD_PAGE_SIZE: '250' }).sources.carecloud).toMatchObject({
      pageSize: 250,
      findPageSize: false,
      limits: { recordsPerRequest: 250 },
    });
    expect(
      loadConfig({ ...careCloud, CARECLOUD_PAGE_SIZE: '1', CARECLOUD_PAGE_OVERLAP: '5' }).sources.carecloud,
    ).toMatchObject({ pageSize: 1, pageOverlap: 0 });
    for (const value of ['0', '1001', '12.5', 'automatic', '-3'])
      expect(errorOf({ ...careCloud, CARECLOUD_PAGE_SIZE: value })).toBe(
        `CARECLOUD_PAGE_SIZE must be a whole number from 1 to 1000, or auto (got "${value}")`,
      );
  });

  it('reads CARECLOUD_RECONCILE_SCHEDULE, or CARECLOUD_FULL_SCHEDULE, its old name', () => {
    expect(loadConfig(careCloud).sources.carecloud?.reconcileSchedule).toEqual({ pattern: '0 4 * * 0' });
    expect(
      loadConfig({ ...careCloud, CARECLOUD_RECONCILE_SCHEDULE: '0 5 * * *' }).sources.carecloud?.reconcileSchedule,
    ).toEqual({ pattern: '0 5 * * *' });
    expect(
      loadConfig({ ...careCloud, CARECLOUD_FULL_SCHEDULE: '0 6 * * *' }).sources.carecloud?.reconcileSchedule,
    ).toEqual({ pattern: '0 6 * * *' });
    expect(
      loadConfig({ ...careCloud, CARECLOUD_RECONCILE_SCHEDULE: '1h', CARECLOUD_FULL_SCHEDULE: '60m' }).sources.carecloud
        ?.reconcileSchedule,
    ).toEqual({ every: 3_600_000 });
    expect(errorOf({ ...careCloud, CARECLOUD_RECONCILE_SCHEDULE: '0 5 * * *', CARECLOUD_FULL_SCHEDULE: 'off' })).toBe(
      'CARECLOUD_RECONCILE_SCHEDULE, CARECLOUD_FULL_SCHEDULE must not differ: the second is the old name of the first (got "0 5 * * *" and "off")',
    );
  });

  it('assembles what each registered source declares: a section per source, its secrets never printed', () => {
    expect(Object.keys(loadConfig({}).sources)).toEqual(sourceNames);
    expect(secretVariables()).toEqual([
      'DATABASE_URL',
      'REDIS_URL',
      'HTTP_TOKEN',
      'ALERT_WEBHOOK_URL',
      ...sources.flatMap((s) => s.config.secrets),
    ]);
    expect(secretVariables()).toEqual(
      expect.arrayContaining(['CARECLOUD_PASSWORD', 'CARECLOUD_APP_ID', 'CIN7_API_KEY']),
    );
    expect(errorOf({ CIN7_USERNAME: 'user', CIN7_API_KEY: ' ', CARECLOUD_APP_ID: 'x'.repeat(3) })).not.toContain('xxx');
  });

  it('is frozen', () => {
    const config = loadConfig(cin7);
    expect(() => ((config.sources.cin7 as { pageSize: number }).pageSize = 1)).toThrow();
  });
});

describe('duration and rate-limit syntax', () => {
  it('reads durations and windows', () => {
    expect(parseDuration('10m')).toBe(600_000);
    expect(parseDuration('1.5s')).toBe(1500);
    expect(parseDuration('soon')).toBeUndefined();
    expect(parseRateWindows('3/s, 60/min,5000/d')).toEqual([
      { max: 3, windowMs: 1000 },
      { max: 60, windowMs: 60_000 },
      { max: 5000, windowMs: 86_400_000 },
    ]);
    expect(parseRateWindows('0/s')).toBeUndefined();
  });
});
