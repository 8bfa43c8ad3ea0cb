/**
 * tsx src/fake/cli.ts [--<source>-port N]… [--seed N] [--count N] [--churn] [--no-rate-limits]
 *
 * Starts the fake server of every registered source (CareCloud and Cin7 Omni) and prints, as .env lines, what the
 * service needs to use them. Runs until interrupted.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { sources } from '../sources/index.ts';
import { startFakes } from './start-fakes.ts';

const portOption = (source: string) => `${source}-port`;

export const USAGE = `Usage: tsx src/fake/cli.ts [options]
${sources
  .map(
    ({ name, fake }) =>
      `  ${`--${portOption(name)} N`.padEnd(21)}port of the ${fake.label.replace(/^Fake /, 'fake ')} (default ${fake.port}; 0 = any free port)`,
  )
  .join('\n')}
  --seed N             seed of the generated data (default 1)
  --count N            vouchers generated per source (default 10000)
  --churn              keep changing a few vouchers every 5 seconds
  --no-rate-limits     turn the fakes' rate limits off
  --help               show this text`;

/** The port of each source's fake is `<key>Port` (`careCloudPort`), after the key its fake declares. */
export interface FakeCliOptions {
  [port: `${string}Port`]: number;
  seed: number;
  count: number;
  churn: boolean;
  rateLimits: boolean;
}

/** Parses the command line; throws an Error whose message says what is wrong. */
export function parseFakeCliArgs(args: string[]): FakeCliOptions | 'help' {
  const ports = Object.fromEntries(
    sources.map(({ name, fake }) => [portOption(name), { type: 'string', default: String(fake.port) } as const]),
  );
  const { values } = parseArgs({
    args,
    strict: true,
    allowPositionals: false,
    options: {
      ...ports,
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
    if (!/^-?\d+$/.test(text) || value < min || value > max)
      throw new Error(`--${name} must be a whole number from ${min} to ${max} (got "${text}")`);
    return value;
  };
  const options: FakeCliOptions = {
    seed: whole('seed', values.seed, -(2 ** 31), 2 ** 32 - 1),
    count: whole('count', values.count, 0, 4_000_000),
    churn: values.churn,
    rateLimits: !values['no-rate-limits'],
  };
  for (const { name, fake } of sources)
    options[`${fake.key}Port`] = whole(
      portOption(name),
      (values as Record<string, unknown>)[portOption(name)] as string,
      0,
      65_535,
    );
  return options;
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
  const fakes = await startFakes((fake) => ({ options: common, port: options[`${fake.key}Port`] }));
  const lines: string[] = [];
  for (const { fake, server, url } of fakes.started) {
    lines.push(`# ${fake.label} (${options.count} vouchers, seed ${options.seed})`);
    for (const [name, value] of Object.entries(fake.env(server, url))) lines.push(`${name}=${value}`);
  }
  lines.push(
    `# ${options.rateLimits ? 'Rate limits on' : 'Rate limits off'}${options.churn ? ', data churning' : ''}. Ctrl-C stops.`,
  );
  console.log(lines.join('\n'));
  const shutdown = () => {
    void fakes.stop().then(() => process.exit(0));
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

// Only when run as a command, so that a test can import the parser without starting servers.
if (process.argv[1] && resolve(process.argv[1]) === import.meta.filename) await main();
