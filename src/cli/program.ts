/**
 * `voucher-sync <command>`: the operator's one command-line tool (bin/voucher-sync.mjs; the `npm run` names are
 * aliases). Each command lives in src/cli/commands/ and registers itself here; this file decides only how a
 * command's outcome becomes an exit code and a message (src/cli/command-kit.ts).
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { ConfigError } from '../errors.ts';
import { atPackageRoot } from '../package-root.ts';
import { scrubSecrets } from '../secrets.ts';
import { EXIT, UsageError } from './command-kit.ts';
import * as db from './commands/db.ts';
import * as rejected from './commands/rejected.ts';
import * as reportingRole from './commands/reporting-role.ts';
import * as demo from './commands/demo.ts';
import * as start from './commands/start.ts';
import * as status from './commands/status.ts';
import * as sync from './commands/sync.ts';
import * as pause from './commands/pause.ts';
import * as cancel from './commands/cancel.ts';
import * as runs from './commands/runs.ts';
import * as retry from './commands/retry.ts';
import * as backfill from './commands/backfill.ts';
import * as reset from './commands/reset.ts';

const { version } = JSON.parse(readFileSync(atPackageRoot('package.json'), 'utf8')) as {
  version: string;
};

export function buildProgram(): Command {
  const program = new Command('voucher-sync')
    .description('Keeps PostgreSQL in step with the vouchers of CareCloud and Cin7 Omni.')
    .version(version)
    // Set before the commands are added: each copies them.
    .exitOverride()
    .showSuggestionAfterError()
    .allowExcessArguments(false)
    .configureOutput({
      // One line, the suggestion on it: "error: unknown option '--since' (did you mean --source?)".
      outputError: (text, write) =>
        write(
          `${text.trimEnd().replace(/\n\((Did you mean [^)]*)\)$/, (_, hint: string) => ` (${hint.charAt(0).toLowerCase()}${hint.slice(1)})`)}\n`,
        ),
    });
  for (const command of [
    start,
    sync,
    backfill,
    status,
    pause,
    cancel,
    reset,
    runs,
    retry,
    rejected,
    demo,
    db,
    reportingRole,
  ])
    command.register(program);
  return program;
}

/** Parses `argv` (without node and the script), runs the command, and sets the exit code. */
export async function runProgram(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv, { from: 'user' });
  } catch (error) {
    process.exitCode = report(error);
  }
}

function report(error: unknown): number {
  if (error instanceof CommanderError) {
    // Commander has printed its message (or the help, or the version) already.
    return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
  }
  if (error instanceof UsageError) {
    console.error(`error: ${error.message}`);
    return EXIT.usage;
  }
  if (error instanceof ConfigError) {
    for (const line of error.message.split('\n')) console.error(`Configuration error: ${line}`);
    return EXIT.failed;
  }
  console.error(scrubSecrets(error instanceof Error ? `${error.name}: ${error.message}` : String(error)));
  return EXIT.failed;
}
