/**
 * What a re-read would cost, for the dry runs of `backfill` (a range) and `reset` (the first backfill that follows):
 * how many records it would read — as the source tells cheaply (the stream's countRecords: CareCloud's total and a
 * binary search), else as our table holds them (Cin7 tells no total) — and what that is in requests, of the daily
 * budget (the budget plan's arithmetic, src/sync/budget-plan.ts) and in time at the configured limits.
 */
import type { SourceLimits } from '../config.ts';
import type { Db } from '../db/client.ts';
import { countStoredVouchers } from '../db/stored-counts.ts';
import { budgetCost, describeCost, requestsFor, type BudgetCost } from '../sync/budget-plan.ts';
import { pageSizeInUse } from '../sync/page-size.ts';
import type { BackfillRange, StreamDefinition } from '../types.ts';
import { sustainedRate } from './eta.ts';

/** Requests a plan of slices adds to the pages (boundary reads, the overlap at each end): about 5 %. */
const PLAN_SHARE = 0.05;

export interface WorkEstimate {
  records: number;
  /** Who counted them: the source, or our table. */
  countedBy: 'source' | 'stored';
  /** Requests the count itself made (the source's). */
  countRequests: number;
  cost: BudgetCost;
  /** Time the requests take at the configured rate limits and budget; null when the source has no rate limit. */
  seconds: number | null;
}

export async function estimateWork<Client>(input: {
  source: string;
  stream: StreamDefinition<Client>;
  client: Client;
  db: Db;
  limits: SourceLimits;
  range: BackfillRange | null;
  signal?: AbortSignal;
}): Promise<WorkEstimate> {
  const { stream, range } = input;
  // With a page size found at run time, in requests of the size found rather than of the ceiling.
  const configured = input.limits.recordsPerRequest;
  const perRequest = await pageSizeInUse(input.db, { source: input.source, stream, configured });
  const limits = { ...input.limits, recordsPerRequest: perRequest };
  let countRequests = 0;
  const call = { signal: input.signal, observer: { onRequest: () => countRequests++ } };
  const told = stream.countRecords ? await stream.countRecords(input.client, range, call) : null;
  const records =
    told ??
    (await countStoredVouchers(input.db, input.source, { range: range ?? undefined, cursorField: stream.cursorField }));
  // A backfill's run finds its range again as its plan's first step: the count's requests are part of its cost.
  const requests = Math.ceil(requestsFor(records, limits) * (1 + PLAN_SHARE)) + countRequests;
  const cost = budgetCost(requests, limits);
  return {
    records,
    countedBy: told === null ? 'stored' : 'source',
    countRequests,
    cost,
    seconds: timeAt(cost, limits),
  };
}

/** Seconds at the sustained rate, plus a budget window for each allowance past the first the work needs. */
function timeAt(cost: BudgetCost, limits: SourceLimits): number | null {
  const rate = sustainedRate(limits.windows);
  if (rate === null) return null;
  const windows = cost.windows ?? 1;
  if (windows <= 1 || cost.allowance === null) return cost.requests / rate;
  return (windows - 1) * cost.windowSeconds + (cost.requests - (windows - 1) * cost.allowance) / rate;
}

const number = (n: number) => n.toLocaleString('en-US');

/** "2 h 5 min", "45 s", "3.2 days" */
export function describeSeconds(seconds: number): string {
  if (seconds < 90) return `${Math.max(1, Math.round(seconds))} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  if (seconds < 2 * 86_400) return `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min`;
  return `${+(seconds / 86_400).toFixed(1)} days`;
}

/** The lines a dry run prints. */
export function describeWork(source: string, estimate: WorkEstimate, what: 'range' | 'list'): string[] {
  const counted =
    estimate.countedBy === 'source'
      ? `as ${source} counts them (${estimate.countRequests} requests to count)`
      : `as our table holds them: ${source} tells no count, so vouchers added since the last reconciliation are not in it`;
  return [
    `records:  about ${number(estimate.records)} ${what === 'range' ? 'in the range' : 'in all'}, ${counted}`,
    `requests: ${describeCost(estimate.cost)}`,
    `time:     ${estimate.seconds === null ? 'no rate limit is configured' : `about ${describeSeconds(estimate.seconds)} at the configured limits`}`,
  ];
}
