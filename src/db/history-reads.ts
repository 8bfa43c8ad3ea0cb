/**
 * What the status page's charts read from the ledger (`sync_runs`) and `rejected_records`, as plain rows:
 * src/server/history.ts chooses the range and the bucket width and shapes the rows into the page's points. Every
 * query reads a source's rows by the (source, started_at) index, so a year of 5-minute runs costs no more than the
 * days asked for.
 */
import type { SyncRun } from '../generated/prisma/client.ts';
import type { RunCounters } from '../types.ts';
import type { LargeQueries } from './client.ts';

/** Runs of each source from `from` to `to`, each counted up to `upTo` at most: enough to choose runs or buckets. */
export function countRunsUpTo(
  query: LargeQueries,
  names: string[],
  from: Date,
  to: Date,
  upTo: number,
): Promise<{ source: string; n: number }[]> {
  return query(
    `SELECT s.source, (SELECT count(*)::int FROM (
               SELECT 1 FROM sync_runs r WHERE r.source = s.source AND r.started_at >= $2 AND r.started_at <= $3
                LIMIT ${Math.trunc(upTo)}) upto) AS n
       FROM unnest($1::text[]) AS s(source)`,
    [names, from, to],
  );
}

/** One run (a logical run: the ledger rows of one run resumed over several jobs count once) or one bucket of runs. */
export interface RunRow {
  /** When the run (or the bucket) began. */
  at: Date;
  /** Runs in this point: 1 per run; in bucket mode, how many runs began in the bucket. */
  runs: number;
  /** Per run: its mode and final status; in bucket mode null. */
  mode: string | null;
  status: string | null;
  /** Wall time from its first row's start to its last row's end (its last heartbeat, for one still going); bucket: the longest. */
  durationSeconds: number;
  /** Records fetched; bucket: the sum over its runs. */
  records: number;
  inserted: number;
  updated: number;
  deleted: number;
  /** API requests; bucket: the sum. */
  requests: number;
  /** Bucket mode only: failed runs in the bucket. */
  failed: number;
}

/**
 * A source's runs that began in the range: one row per logical run (its rows resumed over several jobs added up)
 * when `bucket` is 0, else one row per `bucket` seconds.
 */
export function readRunRows(
  query: LargeQueries,
  source: string,
  from: Date,
  to: Date,
  bucket: number,
): Promise<RunRow[]> {
  // A row still going (running, waiting) has no end yet: its last heartbeat is as far as it is known to have got.
  return bucket === 0
    ? query<RunRow>(
        `SELECT min(started_at) AS at, 1 AS runs,
                (array_agg(mode ORDER BY id))[1] AS mode, (array_agg(status ORDER BY id DESC))[1] AS status,
                date_part('epoch', max(COALESCE(finished_at, heartbeat_at)) - min(started_at))::float8 AS "durationSeconds",
                sum(fetched)::int AS records, sum(inserted)::int AS inserted, sum(updated)::int AS updated,
                sum(deleted)::int AS deleted, sum(api_calls)::int AS requests, 0 AS failed
           FROM sync_runs
          WHERE source = $1 AND started_at >= $2 AND started_at <= $3
          GROUP BY COALESCE(logical_run_id, id)
          ORDER BY at, min(id)`,
        [source, from, to],
      )
    : query<RunRow>(
        `SELECT to_timestamp(floor(date_part('epoch', started_at) / $4) * $4) AS at,
                count(*) FILTER (WHERE logical_run_id IS NULL OR logical_run_id = id)::int AS runs,
                NULL AS mode, NULL AS status,
                max(date_part('epoch', COALESCE(finished_at, heartbeat_at) - started_at))::float8 AS "durationSeconds",
                sum(fetched)::int AS records, sum(inserted)::int AS inserted, sum(updated)::int AS updated,
                sum(deleted)::int AS deleted, sum(api_calls)::int AS requests,
                count(*) FILTER (WHERE status = 'failed')::int AS failed
           FROM sync_runs
          WHERE source = $1 AND started_at >= $2 AND started_at <= $3
          GROUP BY 1 ORDER BY 1`,
        [source, from, to, bucket],
      );
}

/** When the logical run of row `r` began: its first row's start, looked up only for a run resumed over several rows. */
const BEGAN = `CASE WHEN r.logical_run_id IS NULL OR r.logical_run_id = r.id THEN r.started_at
  ELSE COALESCE((SELECT f.started_at FROM sync_runs f WHERE f.id = r.logical_run_id), r.started_at) END`;

/**
 * For each successful incremental run of a source that began in the range: when it finished, and the seconds from
 * the previous such run's beginning to then (`bucket` > 0: the largest per bucket of that many seconds).
 */
export function readFreshnessRows(
  query: LargeQueries,
  source: string,
  from: Date,
  to: Date,
  bucket: number,
): Promise<{ at: Date; seconds: number }[]> {
  // A run resumed over several jobs began when its first row did. The success just before the range is read too:
  // the first point in the range measures from it. Runs of a source never overlap, so the order of their rows'
  // starts is the order of their beginnings: the index's order, with nothing to sort.
  return query(
    `WITH before AS (
       SELECT ${BEGAN} AS began
         FROM sync_runs r
        WHERE r.source = $1 AND r.mode = 'incremental' AND r.status = 'succeeded' AND r.started_at < $2
        ORDER BY r.started_at DESC LIMIT 1
     ),
     points AS (
       SELECT r.finished_at AS at,
              date_part('epoch', r.finished_at
                - COALESCE(lag(${BEGAN}) OVER (ORDER BY r.started_at), (SELECT began FROM before)))::float8 AS seconds
         FROM sync_runs r
        WHERE r.source = $1 AND r.mode = 'incremental' AND r.status = 'succeeded'
          AND r.started_at >= $2 AND r.started_at <= $3 AND r.finished_at IS NOT NULL
     )
     SELECT ${bucket === 0 ? 'at' : "to_timestamp(floor(date_part('epoch', at) / $4) * $4)"} AS at, max(seconds) AS seconds
       FROM points WHERE seconds IS NOT NULL
      GROUP BY 1 ORDER BY 1`,
    bucket === 0 ? [source, from, to] : [source, from, to, bucket],
  );
}

/**
 * Requests of the sources' runs that began in the range, per source and hour (hours counted from 1970 in UTC, as
 * the page draws them, whatever the session's time zone). A run within one hour is summed into its hour (`s` and
 * `e` null); a run spanning hours comes back alone, with its start `s` and end `e`, for the caller to spread (a
 * series per run in SQL makes the planner expect a thousand rows a run, and plan for millions).
 */
export function readHourlyRequestRows(
  query: LargeQueries,
  names: string[],
  from: Date,
  to: Date,
): Promise<{ source: string; hour: number; requests: number; s: Date | null; e: Date | null }[]> {
  return query(
    `SELECT source, floor(date_part('epoch', started_at) / 3600)::float8 AS hour, sum(api_calls)::float8 AS requests, s, e
       FROM sync_runs
      CROSS JOIN LATERAL (SELECT COALESCE(finished_at, heartbeat_at) AS ended) ends
      CROSS JOIN LATERAL (
        SELECT CASE WHEN spans THEN started_at END AS s, CASE WHEN spans THEN ended END AS e
          FROM (SELECT floor(date_part('epoch', started_at) / 3600) < floor(date_part('epoch', ended) / 3600) AS spans) x
      ) spanning
      WHERE source = ANY($1) AND started_at >= $2 AND started_at <= $3 AND api_calls > 0
      GROUP BY 1, 2, 4, 5`,
    [names, from, to],
  );
}

/** A ledger row as the page's table of recent runs shows it. */
export type RecentRunRow = Pick<
  SyncRun,
  | 'source'
  | 'stream'
  | 'mode'
  | 'status'
  | 'startedAt'
  | 'finishedAt'
  | keyof RunCounters
  | 'waitingReason'
  | 'waitingUntil'
  | 'error'
  | 'warnings'
> & {
  id: string;
  /** The logical run this row belongs to (its first row); equal to id for a run in one piece. */
  runId: string;
  /** From its start to its end, or for a row still going to its last heartbeat or `now`, whichever is later. */
  durationSeconds: number;
};

/** The newest `limit` ledger rows of every source, newest first. */
export function readRecentRunRows(query: LargeQueries, now: Date, limit: number): Promise<RecentRunRow[]> {
  return query<RecentRunRow>(
    `SELECT id::text, COALESCE(logical_run_id, id)::text AS "runId", source, stream, mode, status,
            started_at AS "startedAt", finished_at AS "finishedAt",
            date_part('epoch', COALESCE(finished_at, greatest(heartbeat_at, $1)) - started_at)::float8 AS "durationSeconds",
            pages, fetched, inserted, updated, unchanged, rejected, deleted, api_calls AS "apiCalls",
            rate_limited AS "rateLimited", waiting_reason AS "waitingReason", waiting_until AS "waitingUntil", error, warnings
       FROM sync_runs ORDER BY sync_runs.id DESC LIMIT $2`,
    [now, limit],
  );
}

/** The newest `limit` open rejected records of the sources, most recent first — never their `raw`. */
export function readRejectedRows(query: LargeQueries, names: string[], limit: number) {
  // Never `raw`: the record as the source sent it may hold a customer's e-mail address.
  return query<{
    id: string;
    source: string;
    stream: string;
    sourceId: string | null;
    reason: string;
    timesSeen: number;
    lastRejectedAt: Date;
  }>(
    `SELECT id::text, source, stream, source_id AS "sourceId", reason, times_seen AS "timesSeen",
            last_rejected_at AS "lastRejectedAt"
       FROM rejected_records WHERE source = ANY($1::text[]) AND resolved_at IS NULL
      ORDER BY last_rejected_at DESC, id DESC LIMIT $2`,
    [names, limit],
  );
}
