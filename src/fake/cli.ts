/**
 * tsx src/fake/cli.ts [--carecloud-port N] [--cin7-port N] [--seed N] [--count N] [--churn] [--no-rate-limits]
 *
 * Starts the fake CareCloud and Cin7 Omni servers and prints, as .env lines, what the service needs to use
 * them. Runs until interrupted.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createFakeCareCloud } from './carecloud.ts';
import { createFakeCin7 } from './cin7.ts';

export const USAGE = `Usage: tsx src/fake/cli.ts [options]
  --carecloud-port N   port of the fake CareCloud (default 4010; 0 = any free port)
  --cin7-port N        port of the fake Cin7 Omni (default 4020; 0 = any free port)
  --seed N             seed of the generated data (default 1)
  --count N            vouchers generated per source (default 10000)
  --churn              keep changing a few vouchers every 5 seconds
  --no-rate-limits     turn the fakes' rate limits off
  --help               show this text`;

export interface FakeCliOptions {
  careCloudPort: number;
  cin7Port: number;
  seed: number;
  count: number;
  churn: boolean;
  rateLimits: boolean;
}

/** Parses the command line; throws an Error whose message says what is wrong. */
export function parseFakeCliArgs(args: string[]): FakeCliOptions | 'help' {
  const { values } = parseArgs({
    args,
    strict: true,
    allowPositionals: false,
    options: {
      'carecloud-port': { type: 'string', default: '4010' },
      'cin7-port': { type: 'string', default: '4020' },
      seed: { type: 'string', default: '1' },
      count: { type: 'string', default: '10000' },
      churn: { type: 'boolean', default: false },
      'no-rate-limits': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) return 'help';
  const whole = (name: string, text: string, min: number, max: number) => {
    const value = Number(text);
    if (!/^-?\d+$/.test(text) || value < min || value > max) throw new Error(`--${name} must be a whole number from ${min} to ${max} (got "${text}")`);
    return value;
  };
  return {
    careCloudPort: whole('carecloud-port', values['carecloud-port'], 0, 65_535),
    cin7Port: whole('cin7-port', values['cin7-port'], 0, 65_535),
    seed: whole('seed', values.seed, -(2 ** 31), 2 ** 32 - 1),
    count: whole('count', values.count, 0, 4_000_000),
    churn: values.churn,
    rateLimits: !values['no-rate-limits'],
  };
}

async function main(): Promise<void> {
  let options: FakeCliOptions | 'help';
  try {
    options = parseFakeCliArgs(process.argv.slice(2));
  } catch (error) {
    console.error(`${error instanceof Error ? error.message : String(error)}\n\n${USAGE}`);
    process.exitCode = 2;
    return;
  }
  if (options === 'help') {
    console.log(USAGE);
    return;
  }
  const common = {
    seed: options.seed,
    count: options.count,
    churn: options.churn ? { everyMs: 5_000, changes: 5 } : null,
    ...(options.rateLimits ? {} : { rateLimits: null }),
  };
  const careCloud = createFakeCareCloud(common);
  const cin7 = createFakeCin7(common);
  const careCloudUrl = await careCloud.start(options.careCloudPort);
  const cin7Url = await cin7.start(options.cin7Port);
  const cc = careCloud.credentials;
  console.log(
    [
      `# Fake CareCloud (${options.count} vouchers, seed ${options.seed})`,
      `CARECLOUD_BASE_URL=${careCloudUrl}`,
      `CARECLOUD_LOGIN=${cc.login}`,
      `CARECLOUD_PASSWORD=${cc.password}`,
      `CARECLOUD_APP_ID=${cc.appId}`,
      `CARECLOUD_TIMEZONE=${careCloud.timezone}`,
      `# Fake Cin7 Omni`,
      `CIN7_BASE_URL=${cin7Url}`,
      `CIN7_USERNAME=${cin7.credentials.username}`,
      `CIN7_API_KEY=${cin7.credentials.apiKey}`,
      `# ${options.rateLimits ? 'Rate limits on' : 'Rate limits off'}${options.churn ? ', data churning' : ''}. Ctrl-C stops.`,
    ].join('\n'),
  );
  const shutdown = () => {
    void Promise.all([careCloud.stop(), cin7.stop()]).then(() => process.exit(0));
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

// Only when run as a command, so that a test can import the parser without starting servers.
if (process.argv[1] && resolve(process.argv[1]) === import.meta.filename) await main();
