/**
 * voucher-sync rejected list [--source S] [--open] [--limit N] [--json]
 * voucher-sync rejected replay [--source S] [--id ID] [--limit N]
 *
 * The records that failed validation (`rejected_records`): listed without their payload (the record as the source
 * sent it may hold a customer's e-mail address; reasons are masked as in logs), and replayed — read again from the
 * source by id or code and validated with today's rules (src/sync/replay.ts). Replay exits 0 when it ran, even if
 * records failed again; 1 on an error (the source, the database, another replay under way); 130 on Ctrl-C.
 */
import { Option, type Command } from 'commander';
import type { Config } from '../../config.ts';
import { loadConfig, loadDotEnv } from '../../config.ts';
import { createPrisma, type Db } from '../../db/client.ts';
import { findRejected, listRejected, openToReplay, type RejectedListRow } from '../../db/rejected.ts';
import { SourceBusyError } from '../../db/source-lock.ts';
import { maskPersonalData, type Logger } from '../../logger.ts';
import { scrubSecrets } from '../../secrets.ts';
import { sourceNames } from '../../sources/index.ts';
import { checkDatabase, DatabaseNotReadyError } from '../../status/check-database.ts';
import { replayRejected, type ReplayOutcome } from '../../sync/replay.ts';
import { createRedis, RedisUnreachableError, waitForRedis } from '../../../jobs/queues.ts';
import { createSourceRuntimes } from '../../../jobs/runtime.ts';
import { act, EXIT, openContext, sourceOption, UsageError, wholeNumber } from '../command-kit.ts';

const DEFAULT_LIST_LIMIT = 50;

export function register(program: Command): void {
  const rejected = program
    .command('rejected')
    .description('records that failed validation: list them, or read them again from the source (replay)');
  rejected
    .command('list')
    .description('the rejected records, newest first: id, source, record id, reason, when seen, resolved or open')
    .addOption(sourceOption({ required: false }))
    .option('--open', 'only those not resolved yet', false)
    .addOption(
      new Option('--limit <n>', `at most this many (default ${DEFAULT_LIST_LIMIT})`)
        .argParser(wholeNumber(1, 100_000))
        .default(DEFAULT_LIST_LIMIT, String(DEFAULT_LIST_LIMIT)),
    )
    .option('--json', 'as JSON, one object per record (never the payload)', false)
    .action(act(list));
  rejected
    .command('replay')
    .description(
      'read the open rejected records again from the source by id or code and validate them again: stored and ' +
        'resolved if they pass, kept with the new reason if not, marked gone if the source no longer has them',
    )
    .addOption(sourceOption({ required: false }))
    .addOption(new Option('--id <id>', 'only this rejected record (its id in `rejected list`)').argParser(recordId))
    .addOption(
      new Option('--limit <n>', 'at most this many records per source (each costs a request); default all').argParser(
        wholeNumber(1),
      ),
    )
    .action(act(replay));
}

function recordId(value: string): bigint {
  if (!/^[1-9]\d{0,18}$/.test(value)) throw new UsageError(`--id takes the id of a rejected record (got "${value}")`);
  return BigInt(value);
}

/** The database for reading only: never created nor migrated here (one line and exit 1 when it is not ready). */
async function openForReading(): Promise<{ config: Config; db: Db } | null> {
  loadDotEnv();
  const config = loadConfig();
  try {
    await checkDatabase(config.databaseUrl.reveal());
  } catch (error) {
    if (!(error instanceof DatabaseNotReadyError)) throw error;
    console.error(scrubSecrets(error.message));
    return null;
  }
  return { config, db: createPrisma(config.databaseUrl.reveal(), { max: 2 }) };
}

async function list(options: { source?: string; open: boolean; limit: number; json: boolean }): Promise<number> {
  const opened = await openForReading();
  if (!opened) return EXIT.failed;
  try {
    const { rows, total } = await listRejected(
      opened.db,
      { source: options.source, open: options.open },
      options.limit,
    );
    if (options.json) console.log(JSON.stringify(rows.map(asJson), null, 2));
    else console.log(formatList(rows, total, options.open));
    return EXIT.ok;
  } finally {
    await opened.db.$disconnect();
  }
}

/** A row for scripts: ids as strings (they are bigints), times in ISO 8601, the reason masked. */
function asJson(row: RejectedListRow) {
  return {
    id: String(row.id),
    source: row.source,
    stream: row.stream,
    sourceId: row.sourceId,
    reason: maskPersonalData(row.reason),
    timesSeen: row.timesSeen,
    firstRejectedAt: row.firstRejectedAt.toISOString(),
    lastRejectedAt: row.lastRejectedAt.toISOString(),
    runId: row.runId === null ? null : String(row.runId),
    resolution: row.resolution,
    resolvedAt: row.resolvedAt?.toISOString() ?? null,
    resolvedByRunId: row.resolvedByRunId === null ? null : String(row.resolvedByRunId),
  };
}

const time = (date: Date) => date.toISOString().slice(0, 16).replace('T', ' ') + 'Z';
const cut = (text: string, width: number) => (text.length <= width ? text : `${text.slice(0, width - 1)}…`);

/** What became of a rejection, in words: `open`, or how, by which run and when it was resolved. */
function stateOf(row: RejectedListRow): string {
  if (row.resolvedAt === null) return 'open';
  const how = row.resolution === 'gone' ? 'gone at the source' : (row.resolution ?? 'resolved');
  return `${how} (run ${row.resolvedByRunId ?? '?'}, ${time(row.resolvedAt)})`;
}

function formatList(rows: RejectedListRow[], total: number, open: boolean): string {
  if (rows.length === 0) return open ? 'No open rejected records.' : 'No rejected records.';
  const table = [
    ['id', 'source', 'record', 'reason', 'seen', 'first rejected', 'last rejected', 'state'],
    ...rows.map((r) => [
      String(r.id),
      r.source,
      r.sourceId === null ? '(no id)' : cut(r.sourceId, 24),
      cut(maskPersonalData(r.reason).replace(/\s+/g, ' '), 60),
      String(r.timesSeen),
      time(r.firstRejectedAt),
      time(r.lastRejectedAt),
      stateOf(r),
    ]),
  ];
  const widths = table[0]!.map((_, i) => Math.max(...table.map((line) => line[i]!.length)));
  const lines = table.map((line) =>
    line
      .map((cell, i) => cell.padEnd(widths[i]!))
      .join('  ')
      .trimEnd(),
  );
  if (total > rows.length) lines.push(`(${rows.length} of ${total}: --limit shows more)`);
  return lines.join('\n');
}

async function replay(options: { source?: string; id?: bigint; limit?: number }): Promise<number> {
  const context = await openContext({ migrate: true });
  const { config, db, logger } = context;
  try {
    const chosen = await sourcesToReplay(db, options);
    if (typeof chosen === 'string') {
      console.log(chosen);
      return EXIT.ok;
    }
    try {
      await waitForRedis(config.redisUrl.reveal());
    } catch (error) {
      if (!(error instanceof RedisUnreachableError)) throw error;
      console.error(scrubSecrets(error.message));
      return EXIT.failed;
    }
    return await replaySources(context, chosen, options, logger);
  } finally {
    await context.close();
  }
}

/** The sources to replay, or a line saying why there is nothing to do. A bad --id is a bad argument. */
async function sourcesToReplay(db: Db, options: { source?: string; id?: bigint }): Promise<string[] | string> {
  if (options.id === undefined) return options.source === undefined ? [...sourceNames] : [options.source];
  const record = await findRejected(db, options.id);
  if (!record) throw new UsageError(`there is no rejected record ${options.id} (see voucher-sync rejected list)`);
  if (options.source !== undefined && record.source !== options.source)
    throw new UsageError(`rejected record ${options.id} is of ${record.source}, not ${options.source}`);
  if (record.resolvedAt !== null)
    return `Rejected record ${options.id} is resolved already (${record.resolution ?? 'resolved'} by run ${record.resolvedByRunId ?? '?'}); nothing to replay.`;
  return [record.source];
}

async function replaySources(
  context: { config: Config; db: Db },
  names: string[],
  options: { source?: string; id?: bigint; limit?: number },
  logger: Logger,
): Promise<number> {
  const { config, db } = context;
  const redis = createRedis(config.redisUrl.reveal());
  const runtimes = createSourceRuntimes(config, { redis, logger });
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  let code: number = EXIT.ok;
  let found = false;
  try {
    for (const source of names) {
      const rejected = await openToReplay(db, { source, id: options.id, limit: options.limit });
      const runtime = runtimes.find((r) => r.name === source);
      found ||= rejected.length > 0;
      if (rejected.length === 0) {
        if (options.source !== undefined || options.id !== undefined)
          console.log(`${source}: no open rejected records.`);
        continue;
      }
      if (!runtime) {
        // Asked for by name, a source that cannot be read fails the command; among all, it is only said.
        const named = options.source !== undefined || options.id !== undefined;
        (named ? console.error : console.log)(
          `${source}: ${rejected.length} open rejected records not replayed: ${source} is not configured (set its credentials, see .env.example).`,
        );
        if (named) code = EXIT.failed;
        continue;
      }
      let outcome: ReplayOutcome;
      try {
        outcome = await replayRejected({
          source,
          streams: runtime.streams,
          client: runtime.client,
          db,
          databaseUrl: config.databaseUrl.reveal(),
          rejected,
          logger,
          signal: controller.signal,
        });
      } catch (error) {
        if (!(error instanceof SourceBusyError)) throw error;
        console.error(`${source}: a replay of ${source} is already under way; try again when it has finished.`);
        code = EXIT.failed;
        continue;
      }
      console.log(formatOutcome(outcome));
      if (outcome.status === 'cancelled') return EXIT.cancelled;
      if (outcome.status === 'failed') code = EXIT.failed;
    }
    if (!found && options.source === undefined && options.id === undefined) console.log('No open rejected records.');
    return code;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    redis.disconnect();
  }
}

/** `carecloud (run 42): 2 resolved, 1 failed again, 1 gone at the source, 1 cannot be fetched again (…)`. */
export function formatOutcome(outcome: ReplayOutcome): string {
  const runs = outcome.runIds.length === 0 ? '' : ` (run ${outcome.runIds.join(', ')})`;
  const unfetchable = outcome.unidentifiable.length;
  const counts = [
    `${outcome.resolved} resolved`,
    `${outcome.failedAgain} failed again`,
    `${outcome.gone} gone at the source`,
    `${unfetchable} cannot be fetched again` +
      (unfetchable > 0 ? ` (neither id nor code: rejected record ${idList(outcome.unidentifiable)})` : ''),
  ];
  const ending =
    outcome.status === 'succeeded'
      ? ''
      : outcome.status === 'cancelled'
        ? '; cancelled, the rest left open'
        : `; stopped: ${scrubSecrets(maskPersonalData(outcome.error ?? 'failed'))}`;
  return `${outcome.source}${runs}: ${counts.join(', ')}${ending}`;
}

const idList = (ids: bigint[]) =>
  ids.length <= 10 ? ids.join(', ') : `${ids.slice(0, 10).join(', ')} and ${ids.length - 10} more`;
