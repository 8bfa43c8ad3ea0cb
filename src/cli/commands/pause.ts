/**
 * voucher-sync pause --source <name>   and   voucher-sync resume --source <name>
 *
 * A paused source's scheduled runs are skipped (each completes at once, and the worker's log says so), not queued up
 * for later; a run under way when it was paused goes on to its end (`voucher-sync cancel` stops it), and `sync` on a
 * paused source is refused. The pause is kept in Postgres (src/db/source-control.ts), so it survives restarts and the
 * loss of Redis' data, and needs no Redis to be set.
 */
import type { Command } from 'commander';
import { liveLedgerRow } from '../../db/ledger.ts';
import { pauseSource, resumeSource } from '../../db/source-control.ts';
import { act, openContext, sourceOption } from '../command-kit.ts';
import { operator } from '../operator.ts';

export function register(program: Command): void {
  program
    .command('pause')
    .description(
      'pause a source: its scheduled runs are skipped until resume; a run under way goes on to its end (survives restarts)',
    )
    .addOption(sourceOption())
    .action(act(({ source }: { source: string }) => pause(source)));
  program
    .command('resume')
    .description('resume a paused source: its schedules run again from their next time')
    .addOption(sourceOption())
    .action(act(({ source }: { source: string }) => resume(source)));
}

const iso = (at: Date) => at.toISOString().replace(/\.\d+Z$/, 'Z');

async function pause(source: string): Promise<number> {
  const context = await openContext({ migrate: true });
  try {
    const { pause, already } = await pauseSource(context.db, source, operator('voucher-sync pause'), new Date());
    const by = pause.by ? ` by ${pause.by}` : '';
    if (already) {
      console.log(`${source} is already paused, since ${iso(pause.since)}${by}.`);
      return 0;
    }
    const live = await liveLedgerRow(context.db, source);
    const under = live
      ? ` Run ${String(live.logicalRunId ?? live.id)} (${live.mode}), under way, goes on to its end: voucher-sync cancel --source ${source} stops it.`
      : '';
    console.log(
      `${source} paused at ${iso(pause.since)}${by}: its scheduled runs are skipped until voucher-sync resume --source ${source}.${under}`,
    );
    return 0;
  } finally {
    await context.close();
  }
}

async function resume(source: string): Promise<number> {
  const context = await openContext({ migrate: true });
  try {
    const ended = await resumeSource(context.db, source, new Date());
    console.log(
      ended
        ? `${source} resumed (it was paused since ${iso(ended.since)}${ended.by ? ` by ${ended.by}` : ''}): its schedules run again from their next time.`
        : `${source} is not paused.`,
    );
    return 0;
  } finally {
    await context.close();
  }
}
