/**
 * What an operator sees when a setting or an argument is wrong: every variable of .env.example that can be invalid,
 * and every command's arguments, run as real processes. A bad setting is one line naming the variable and exit 1
 * (never a secret's value); a bad argument is the reason, the usage and exit 2.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPOSITORY as root, runCommand } from '../helpers/run-command.ts';

// Nothing listens on port 1: should a case get past validation by mistake, it fails fast instead of syncing.
const UNREACHABLE = {
  DATABASE_URL: 'postgresql://postgres:Db-pw-7c1e9a@127.0.0.1:1/never_created',
  REDIS_URL: 'redis://:Rd-pw-52b0f4@127.0.0.1:1',
};
const SECRET = { password: 'Cc-pw-3f8a61d2', appId: 'cc-app-94d0b7e5', apiKey: 'c7-key-0e6c2a99' };
/** A complete, valid configuration of both sources; each case spoils part of it. */
const VALID: Record<string, string> = {
  ...UNREACHABLE,
  CARECLOUD_BASE_URL: 'http://127.0.0.1:1/webservice/rest-api/enterprise-interface/v1.0',
  CARECLOUD_LOGIN: 'cc-api-user',
  CARECLOUD_PASSWORD: SECRET.password,
  CARECLOUD_APP_ID: SECRET.appId,
  CARECLOUD_TIMEZONE: 'Europe/Prague',
  CIN7_BASE_URL: 'http://127.0.0.1:1/api',
  CIN7_USERNAME: 'cin7-api-user',
  CIN7_API_KEY: SECRET.apiKey,
};
const NEVER_PRINTED = ['Db-pw-7c1e9a', 'Rd-pw-52b0f4', 'Tk-short', 'Hk-9f2d', ...Object.values(SECRET)];

/** Killed after 30 s: a bad setting must be reported long before. */
const run = (script: string, args: string[], env: Record<string, string | undefined>) =>
  runCommand(script, args, env, { timeoutMs: 30_000 });

/** Runs `work` over `items`, `limit` at a time: each child process costs about a second of a core. */
async function pool<T, R>(items: T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return results;
}

const lines = (text: string) => text.split('\n').filter((line) => line.trim() !== '');

interface Problem {
  /** The variables this problem is about; every one of them must be named in its line. */
  names: string[];
  /** Changes to VALID: a value, or undefined to leave the variable unset. */
  env: Record<string, string | undefined>;
  /** Expected in the line, after the names. */
  says: string;
}

const invalid = (name: string, value: string, says: string): Problem => ({
  names: [name],
  env: { [name]: value },
  says,
});
const unset = (names: string[], says: string): Problem => ({
  names,
  env: Object.fromEntries(names.map((n) => [n, undefined])),
  says,
});

const WHOLE = 'must be a whole number from';
const DURATION = 'must be a duration such as 30s';
const SCHEDULE = 'must be a duration of at least 1s (5m, 1h), a cron pattern (0 3 * * *) or off';
const LIMITS = 'must be a list of limits such as 3/s,60/min';
const BUDGET = 'must be a whole number of requests per day, or off';

/**
 * Problems grouped so that one process reports several (each process costs about a second of a core): one line per
 * problem, so a group's line count is its size and each line names its own variable. Within a group the problems
 * touch different variables, and at most one is about a source's missing credentials, which are reported together.
 */
const GROUPS: Problem[][] = [
  [
    invalid(
      'DATABASE_URL',
      'mysql://root:Db-pw-7c1e9a@127.0.0.1/db',
      'must be a URL starting with postgres:// or postgresql://',
    ),
    invalid('REDIS_URL', 'http://:Rd-pw-52b0f4@127.0.0.1:6379', 'must be a URL starting with redis:// or rediss://'),
    invalid('LOG_LEVEL', 'verbose', 'must be one of fatal, error, warn, info, debug, trace, silent (got "verbose")'),
    invalid('HTTP_CONNECT_TIMEOUT', 'soon', DURATION),
    invalid('HTTP_READ_TIMEOUT', '30 seconds', DURATION),
    invalid('HTTP_RETRIES', '-1', `${WHOLE} 0 to 20 (got "-1")`),
    invalid('HTTP_MAX_INLINE_WAIT', '1y', DURATION),
    invalid('HTTP_RETRY_BACKOFF', 'fast', DURATION),
    unset(['CARECLOUD_LOGIN'], 'must be set to sync carecloud'),
    unset(['CIN7_USERNAME'], 'must be set to sync cin7 (CIN7_API_KEY is set)'),
  ],
  [
    invalid('QUEUE_PREFIX', 'voucher sync', 'must be 1 to 64 letters, digits, - or _ (got "voucher sync")'),
    invalid('JOB_ATTEMPTS', '0', `${WHOLE} 1 to 100 (got "0")`),
    invalid('SLICE_CONCURRENCY', '0', `${WHOLE} 1 to 32 (got "0")`),
    invalid('JOB_BACKOFF', '-5s', DURATION),
    invalid('HTTP_REQUEST_TIMEOUT', 'a while', DURATION),
    invalid('HTTP_MAX_RESPONSE_SIZE', '1TB', 'must be a size from 64kB to 128MB, such as 512kB or 16MB (got "1TB")'),
    invalid('CARECLOUD_BASE_URL', 'ftp://example.com/v1.0', 'must be a URL starting with http:// or https://'),
    invalid(
      'CARECLOUD_TIMEZONE',
      'Europe/Atlantis',
      'must be an IANA time zone such as Europe/Prague (got "Europe/Atlantis")',
    ),
    invalid('CARECLOUD_PAGE_SIZE', '0', `${WHOLE} 1 to 1000`),
    invalid('CARECLOUD_PAGE_OVERLAP', '51', `${WHOLE} 1 to 50`),
    invalid('CARECLOUD_SLICE_PAGES', '0', `${WHOLE} 1 to 100000`),
    unset(['CARECLOUD_PASSWORD'], 'must be set to sync carecloud'),
    unset(['CIN7_API_KEY'], 'must be set to sync cin7 (CIN7_USERNAME is set)'),
  ],
  [
    invalid('CARECLOUD_LOOKBACK', 'ten minutes', DURATION),
    invalid('CARECLOUD_SCHEDULE', '500ms', SCHEDULE),
    invalid('CARECLOUD_FULL_SCHEDULE', '0 4 * *', SCHEDULE),
    invalid('CARECLOUD_RATE_LIMIT', '5 per second', LIMITS),
    invalid('CARECLOUD_DAILY_BUDGET', '-1', BUDGET),
    invalid('CARECLOUD_CONFIRM_MAX', 'all', `${WHOLE} 0 to 100000`),
    invalid('CIN7_BASE_URL', 'api.cin7.com/api', 'must be a URL starting with http:// or https://'),
    invalid('CIN7_TIMEZONE', 'Pacific/Nowhere', 'must be an IANA time zone'),
    invalid(
      'REPORTING_TIMEZONE',
      'Mars/Olympus',
      'must be an IANA time zone such as Europe/Prague (got "Mars/Olympus")',
    ),
    invalid(
      'HISTORY_RETENTION',
      'forever',
      'must be a duration of at least 1h, such as 90d or 400d, or off (got "forever")',
    ),
    unset(['CARECLOUD_APP_ID'], 'must be set to sync carecloud'),
  ],
  [
    invalid('CIN7_PAGE_SIZE', '251', `${WHOLE} 1 to 250 (got "251")`),
    invalid('CIN7_SLICE_PAGES', '0', `${WHOLE} 1 to 100000`),
    invalid('CIN7_LOOKBACK', 'a while', DURATION),
    invalid('CIN7_SCHEDULE', 'hourly', SCHEDULE),
    invalid('CIN7_RECONCILE_SCHEDULE', 'daily', SCHEDULE),
    invalid('CARECLOUD_RECONCILE_SCHEDULE', 'weekly', SCHEDULE),
    invalid('CIN7_RATE_LIMIT', '3/s,60/fortnight', LIMITS),
    invalid('CIN7_DAILY_BUDGET', '5000.5', BUDGET),
    invalid('CIN7_CONFIRM_MAX', '5001', `${WHOLE} 0 to 5000`),
    // Only the password of CareCloud set: the line lists everything else it needs, and not the password.
    unset(
      ['CARECLOUD_BASE_URL', 'CARECLOUD_LOGIN', 'CARECLOUD_APP_ID', 'CARECLOUD_TIMEZONE'],
      'must be set to sync carecloud (CARECLOUD_PASSWORD is set)',
    ),
  ],
  [
    invalid('LOG_FORMAT', 'xml', 'must be json or pretty (got "xml")'),
    invalid('HTTP_PORT', '0', `${WHOLE} 1 to 65535 (got "0")`),
    invalid('HTTP_TOKEN', 'Tk-short', 'must be at least 16 characters'),
    invalid('ALERT_WEBHOOK_URL', 'ftp://hooks.example.com/Hk-9f2d', 'must be a URL starting with http:// or https://'),
    invalid('ALERT_STALE_AFTER', 'soon', DURATION),
    invalid('ALERT_FAILING_RUNS', '0', `${WHOLE} 1 to 1000 (got "0")`),
    invalid(
      'CIN7_SCHEDULE',
      '0 25 * * *',
      'is not a valid cron pattern: Constraint error, got value 25 expected range 0-23',
    ),
  ],
  [
    // Checked once every value is valid, so alone here.
    {
      names: ['HTTP_HOST'],
      env: { HTTP_PORT: '8080', HTTP_HOST: '0.0.0.0' },
      says: 'is not a loopback address, so HTTP_TOKEN must be set: the endpoint would be open to the network (got "0.0.0.0")',
    },
  ],
  [
    // The old name and the new one, both valid and different: checked once every value is valid, so alone here.
    {
      names: ['CARECLOUD_RECONCILE_SCHEDULE', 'CARECLOUD_FULL_SCHEDULE'],
      env: { CARECLOUD_RECONCILE_SCHEDULE: '0 5 * * *', CARECLOUD_FULL_SCHEDULE: '0 4 * * 0' },
      says: 'must not differ: the second is the old name of the first (got "0 5 * * *" and "0 4 * * 0")',
    },
  ],
];

describe('an invalid setting', () => {
  it('covers every variable of .env.example', () => {
    const documented = [...readFileSync(join(root, '.env.example'), 'utf8').matchAll(/^([A-Z][A-Z0-9_]*)=/gm)].map(
      (m) => m[1]!,
    );
    expect(documented.length).toBeGreaterThan(30);
    // Read by `npm run db:reporting-role` only, and tested with it (test/integration/security.test.ts).
    const tested = new Set([...GROUPS.flat().flatMap((p) => p.names), 'REPORTING_ROLE', 'REPORTING_PASSWORD']);
    expect(documented.filter((name) => !tested.has(name))).toEqual([]);
    for (const group of GROUPS) {
      const touched = group.flatMap((p) => Object.keys(p.env));
      expect(new Set(touched).size, 'a group touches a variable twice').toBe(touched.length);
    }
  });

  it('stops npm run sync with one line per problem naming the variable, exit 1, and no secret value', async () => {
    const control = { names: ['(none)'], env: {}, says: '' };
    const outcomes = await pool([[control], ...GROUPS], 3, (group) => {
      const env: Record<string, string | undefined> = { ...VALID };
      for (const problem of group) Object.assign(env, problem.env);
      return run('src/cli/main.ts', ['sync', '--source', 'all'], env);
    });

    // The valid configuration gets past validation (and fails on the unreachable database, not on a setting).
    const [valid, ...spoiled] = outcomes;
    expect(valid!.code).toBe(1);
    expect(valid!.stderr).toMatch(/Cannot connect to postgres@127\.0\.0\.1:1\/never_created/);
    expect(valid!.stderr).not.toContain('Configuration error');

    spoiled.forEach((outcome, i) => {
      const group = GROUPS[i]!;
      const label = group.map((p) => p.names.join('+')).join(', ');
      expect(outcome.code, label).toBe(1);
      expect(outcome.stdout, label).toBe('');
      const reported = lines(outcome.stderr);
      expect(reported, label).toHaveLength(group.length);
      for (const problem of group) {
        const expected = `Configuration error: ${problem.names.join(', ')} ${problem.says}`;
        expect(
          reported.filter((line) => line.startsWith(expected)),
          `${label}\n${outcome.stderr}`,
        ).toHaveLength(1);
      }
    });
    const everything = outcomes.map((o) => o.stdout + o.stderr).join('\n');
    expect(NEVER_PRINTED.filter((secret) => everything.includes(secret))).toEqual([]);
  });
});

interface BadArguments {
  script: string;
  args: string[];
  says: string;
  /** The fake's own command prints its usage after the reason; voucher-sync's commands print one line. */
  usage?: string;
}

const CLI = 'src/cli/main.ts';
const FAKE_USAGE = 'Usage: tsx src/fake/cli.ts';
const BAD_ARGUMENTS: BadArguments[] = [
  { script: CLI, args: ['sync', '--source', 'all', '--verbose'], says: "unknown option '--verbose'" },
  { script: CLI, args: ['sync', '--source', 'cin7', '--since', '2026-01-01'], says: "unknown option '--since'" },
  { script: CLI, args: ['sync'], says: "required option '--source <name>' not specified" },
  {
    script: CLI,
    args: ['sync', '--source', 'shopify'],
    says: "option '--source <name>' argument 'shopify' is invalid. Allowed choices are carecloud, cin7, all.",
  },
  {
    script: CLI,
    args: ['sync', '--source', 'all', '--mode', 'fast'],
    says: "argument 'fast' is invalid. Allowed choices are incremental, full.",
  },
  {
    script: CLI,
    args: ['start', '--role', 'boss'],
    says: "argument 'boss' is invalid. Allowed choices are all, worker, scheduler.",
  },
  { script: CLI, args: ['start', '--workers', '2'], says: "unknown option '--workers'" },
  { script: CLI, args: ['demo', '--seed', 'abc'], says: "option '--seed <n>' argument 'abc' is invalid" },
  { script: CLI, args: ['demo', '--loop'], says: "unknown option '--loop'" },
  { script: CLI, args: ['status', '--watch', '0'], says: '--watch takes a number of seconds, at least 1 (got "0")' },
  { script: CLI, args: ['status', '--check', '--watch'], says: 'cannot be combined with --watch' },
  { script: CLI, args: ['synch'], says: "unknown command 'synch'" },
  {
    script: 'src/fake/cli.ts',
    args: ['--carecloud-port', '70000'],
    says: '--carecloud-port must be a whole number from 0 to 65535 (got "70000")',
    usage: FAKE_USAGE,
  },
  {
    script: 'src/fake/cli.ts',
    args: ['--cin7-port', 'http'],
    says: '--cin7-port must be a whole number from 0 to 65535 (got "http")',
    usage: FAKE_USAGE,
  },
  { script: 'src/fake/cli.ts', args: ['--verbose'], says: "Unknown option '--verbose'", usage: FAKE_USAGE },
  { script: CLI, args: ['db:reporting-role', '--force'], says: "unknown option '--force'" },
];

async function expectUsageErrors(cases: BadArguments[]) {
  const outcomes = await pool(cases, 3, (c) => run(c.script, c.args, UNREACHABLE));
  outcomes.forEach((outcome, i) => {
    const { script, args, says, usage } = cases[i]!;
    const label = `${script} ${args.join(' ')}\n${outcome.stderr}`;
    expect(outcome.code, label).toBe(2);
    expect(outcome.stdout, label).toBe('');
    expect(lines(outcome.stderr)[0], label).toContain(says);
    if (usage === undefined) expect(lines(outcome.stderr), label).toHaveLength(1);
    else expect(outcome.stderr, label).toContain(usage);
    expect(outcome.stderr, label).not.toMatch(/^\s+at /m);
  });
}

describe('a bad command-line argument', () => {
  it('gets the reason and the usage, and exit 2, from every command', async () => {
    await expectUsageErrors(BAD_ARGUMENTS);
  });

  // Bugs found while writing this file; each fails until its command is fixed.
  it('db:migrate rejects an argument it does not take', async () => {
    await expectUsageErrors([{ script: CLI, args: ['db:migrate', '--dry-run'], says: "unknown option '--dry-run'" }]);
  });

  it('demo rejects an empty --seed', async () => {
    await expectUsageErrors([
      { script: CLI, args: ['demo', '--seed='], says: "option '--seed <n>' argument '' is invalid" },
    ]);
  });
});
