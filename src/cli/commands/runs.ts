/**
 * voucher-sync runs [--source <name>] [--limit N] [--json]
 *
 * The ledger (`sync_runs`), newest first, one line per row: a run resumed over several jobs (after a wait, a restart)
 * has a row per job, and its later rows name the run they continue. Read only: like `status`, it never creates or
 * migrates the database.
 */
import { Option, type Command } from 'commander';
import { loadConfig, loadDotEnv } from '../../config.ts';
import { createPrisma } from '../../db/client.ts';
import { listRuns, type ListedRun } from '../../db/run-list.ts';
import { scrubSecrets } from '../../secrets.ts';
import { checkDatabase, DatabaseNotReadyError } from '../../status/check-database.ts';
import { formatDuration } from '../../status/format-status.ts';
import { act, sourceOption, wholeNumber } from '../command-kit.ts';

const DEFAULT_LIMIT = 20;
/** Room for the error at the end of a line: the whole of it is in --json. */
const ERROR_WIDTH = 60;

interface RunsArgs {
  source?: string;
  limit: number;
  json: boolean;
}

export function register(program: Command): void {
  program
    .command('runs')
    .description('the run ledger, newest first: mode, status, duration, records, requests, error')
    .addOption(sourceOption({ required: false }))
    .addOption(new Option('--limit <n>', 'how many rows').argParser(wholeNumber(1, 10_000)).default(DEFAULT_LIMIT))
    .option('--json', 'the rows as JSON, the error whole', false)
    .action(act((args: RunsArgs) => runs(args)));
}

async function runs(args: RunsArgs): Promise<number> {
  loadDotEnv();
  const config = loadConfig();
  const databaseUrl = config.databaseUrl.reveal();
  try {
    await checkDatabase(databaseUrl);
  } catch (error) {
    if (!(error instanceof DatabaseNotReadyError)) throw error;
    console.error(scrubSecrets(error.message));
    return 1;
  }
  const db = createPrisma(databaseUrl, { max: 2 });
  try {
    const rows = await listRuns(db, { source: args.source, limit: args.limit });
    const now = new Date();
    if (args.json)
      console.log(
        JSON.stringify(
          rows.map((row) => asJson(row, now)),
          null,
          2,
        ),
      );
    else console.log(rows.length === 0 ? 'No runs yet.' : formatRuns(rows, now));
    return 0;
  } finally {
    await db.$disconnect();
  }
}

/** From its start to its end; for a row not over, to its last heartbeat or now, whichever is later. */
function durationSeconds(row: ListedRun, now: Date): number {
  const end = row.finishedAt ?? (row.status === 'running' ? now : row.heartbeatAt);
  return Math.max(0, (end.getTime() - row.startedAt.getTime()) / 1000);
}

function asJson(row: ListedRun, now: Date) {
  return {
    id: String(row.id),
    logicalRunId: String(row.logicalRunId),
    source: row.source,
    stream: row.stream,
    mode: row.mode,
    status: row.status,
    startedAt: row.startedAt.toISOString(),
    finishedAt: row.finishedAt?.toISOString() ?? null,
    durationSeconds: Math.round(durationSeconds(row, now)),
    fetched: row.fetched,
    inserted: row.inserted,
    updated: row.updated,
    deleted: row.deleted,
    rejected: row.rejected,
    requests: row.apiCalls,
    error: row.error === null ? null : scrubSecrets(row.error),
  };
}

const HEADINGS = [
  'id',
  'part of',
  'source',
  'mode',
  'status',
  'started (UTC)',
  'duration',
  'fetched',
  'inserted',
  'updated',
  'deleted',
  'rejected',
  'requests',
  'error',
];
/** Columns aligned right: the numbers. */
const NUMERIC = new Set([0, 1, 6, 7, 8, 9, 10, 11, 12]);

function errorText(error: string | null): string {
  if (error === null) return '';
  const line = scrubSecrets(error).split('\n')[0]!;
  return line.length > ERROR_WIDTH ? `${line.slice(0, ERROR_WIDTH - 1)}…` : line;
}

export function formatRuns(rows: ListedRun[], now: Date): string {
  const count = (n: number) => n.toLocaleString('en-US');
  const cells = rows.map((row) => [
    String(row.id),
    row.logicalRunId === row.id ? '' : String(row.logicalRunId),
    row.source,
    row.mode,
    row.status,
    row.startedAt
      .toISOString()
      .replace('T', ' ')
      .replace(/\.\d+Z$/, ''),
    formatDuration(durationSeconds(row, now)),
    count(row.fetched),
    count(row.inserted),
    count(row.updated),
    count(row.deleted),
    count(row.rejected),
    count(row.apiCalls),
    errorText(row.error),
  ]);
  const widths = HEADINGS.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (values: string[]) =>
    values
      .map((v, i) => (i === values.length - 1 ? v : NUMERIC.has(i) ? v.padStart(widths[i]!) : v.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(HEADINGS), ...cells.map(line)].join('\n');
}
