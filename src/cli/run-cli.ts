/**
 * What every command shares: a usage error prints the usage and exits 2; a configuration error prints
 * its lines (naming variables, never secret values) and exits 1; anything else is printed as one line, scrubbed of
 * every registered secret, and exits 1.
 */
import { ConfigError } from '../errors.ts';
import { scrubSecrets } from '../secrets.ts';

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Thrown for --help: the usage goes to stdout and the command exits 0. */
export class HelpRequested extends Error {
  override readonly name = 'HelpRequested';
}

export function runCli(usage: string, main: () => Promise<number | void>): void {
  main().then(
    (code) => {
      process.exitCode = code ?? 0;
    },
    (error: unknown) => {
      if (error instanceof HelpRequested) {
        console.log(usage);
        process.exit(0);
      }
      if (error instanceof UsageError) {
        console.error(`${error.message}\n\n${usage}`);
        process.exit(2);
      }
      if (error instanceof ConfigError) {
        for (const line of error.message.split('\n')) console.error(`Configuration error: ${line}`);
        process.exit(1);
      }
      console.error(scrubSecrets(error instanceof Error ? `${error.name}: ${error.message}` : String(error)));
      process.exit(1);
    },
  );
}

/** node:util parseArgs throws TypeErrors with codes; turn them into usage errors. */
export function usageErrorFrom(error: unknown): never {
  if (error instanceof Error && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS'))
    throw new UsageError(error.message);
  throw error;
}
