/**
 * The range of a backfill (`voucher-sync backfill --from --to`): how the command reads its dates, how the range
 * travels on the queue (SyncJobData.range, UTC ISO strings) and is checked when it comes back, and whether a
 * saved scan is the same backfill (a backfill resumes only the scan of its own range). Pure functions.
 *
 * Bounds are whole UTC seconds: Cin7's `where` takes nothing finer (src/sources/cin7/where.ts), and the range the
 * command prints must be the one read. `from` is rounded down and `to` up, so rounding never narrows the range.
 */
import { DateTime, IANAZone } from 'luxon';
import type { ScanState } from '../db/stream-state.ts';
import type { BackfillRange } from '../types.ts';

/** A date the operator typed that cannot be used; the message names the option and what was wrong. */
export class BackfillRangeError extends Error {
  override readonly name = 'BackfillRangeError';
}

const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)?$/i;
const HAS_OFFSET = /(Z|[+-]\d{2}(:?\d{2})?)$/i;

/** Checks an IANA zone name (`--zone`). */
export function checkZone(zone: string): string {
  if (!IANAZone.isValidZone(zone))
    throw new BackfillRangeError(`--zone: "${zone}" is not an IANA time zone (e.g. Europe/Prague)`);
  return zone;
}

/**
 * One bound as typed: ISO 8601 (`2026-11-01T08:00:00+01:00`, `…Z`, or without offset) or `YYYY-MM-DD` (midnight). A
 * date without an offset is a wall time in `zone`; one that the zone's clocks skipped (spring forward) does not
 * exist and is refused rather than moved.
 */
export function parseBound(option: string, text: string, zone: string): Date {
  const trimmed = text.trim();
  if (!DATE_ONLY.test(trimmed) && !DATE_TIME.test(trimmed))
    throw new BackfillRangeError(
      `${option}: "${text}" is not a date (expected ISO 8601 or YYYY-MM-DD, e.g. 2026-11-01 or 2026-11-01T08:00:00Z)`,
    );
  const parsed = DateTime.fromISO(trimmed, { zone, setZone: true });
  if (!parsed.isValid)
    throw new BackfillRangeError(
      `${option}: "${text}" is not a date (${parsed.invalidExplanation ?? parsed.invalidReason})`,
    );
  if (!HAS_OFFSET.test(trimmed) && !DATE_ONLY.test(trimmed)) {
    const wall = DateTime.fromISO(trimmed, { zone: 'UTC' });
    if (wall.toFormat('yyyy-MM-dd HH:mm') !== parsed.toFormat('yyyy-MM-dd HH:mm'))
      throw new BackfillRangeError(`${option}: ${text} does not exist in ${zone} (its clocks skipped that hour)`);
  }
  return parsed.toJSDate();
}

const floorSecond = (ms: number) => Math.floor(ms / 1000) * 1000;
const ceilSecond = (ms: number) => Math.ceil(ms / 1000) * 1000;

/**
 * The range as the command understood it, checked: `from` before `to` and not in the future (a range that ends
 * in the future reads to the newest record). `now` is the command's clock.
 */
export function parseRange(input: { from: string; to: string; zone?: string }, now: Date): BackfillRange {
  const zone = checkZone(input.zone ?? 'UTC');
  const from = new Date(floorSecond(parseBound('--from', input.from, zone).getTime()));
  const to = new Date(ceilSecond(parseBound('--to', input.to, zone).getTime()));
  if (from.getTime() >= to.getTime())
    throw new BackfillRangeError(
      `--from (${utcText(from)}) must be before --to (${utcText(to)}); --to is exclusive, so the range is empty`,
    );
  if (from.getTime() > now.getTime())
    throw new BackfillRangeError(
      `the range starts in the future (${utcText(from)}, now ${utcText(now)}): nothing to re-read`,
    );
  return { from, to };
}

/** `2026-11-01T00:00:00Z`: whole seconds, as the command prints and the queue carries a bound. */
export const utcText = (date: Date) => date.toISOString().replace('.000Z', 'Z');

/** The range as SyncJobData carries it. */
export const rangeData = (range: BackfillRange) => ({ from: utcText(range.from), to: utcText(range.to) });

/** The range of a job's data, checked (it comes back from Redis); throws naming what is wrong. */
export function rangeOfData(data: unknown): BackfillRange {
  const { from, to } = (typeof data === 'object' && data !== null ? data : {}) as { from?: unknown; to?: unknown };
  const instant = (value: unknown) => (typeof value === 'string' && /Z$/.test(value) ? Date.parse(value) : NaN);
  const [a, b] = [instant(from), instant(to)];
  if (!Number.isFinite(a) || !Number.isFinite(b) || a % 1000 !== 0 || b % 1000 !== 0 || a >= b)
    throw new Error(
      `a backfill job needs a range {from, to} of UTC seconds, from before to; got ${JSON.stringify(data)?.slice(0, 200)}`,
    );
  return { from: new Date(a), to: new Date(b) };
}

/** The start of a backfill job's id: it names the range (BullMQ ids take no ':'). */
export const backfillJobId = (range: BackfillRange) =>
  `cli-backfill-${utcText(range.from).replace(/[-:]/g, '')}-${utcText(range.to).replace(/[-:]/g, '')}`;

/** The saved scan of a backfill, when it is of this range (a backfill of another range starts a scan of its own). */
export function sameBackfill(saved: ScanState | undefined, range: BackfillRange): ScanState | undefined {
  const savedRange = saved?.range as { from?: unknown; to?: unknown } | undefined;
  const wanted = rangeData(range);
  return savedRange?.from === wanted.from && savedRange?.to === wanted.to ? saved : undefined;
}

/** "7.5 days", "3 h", "20 min": the length of a range, for what the command prints. */
export function describeLength(range: BackfillRange): string {
  const hours = (range.to.getTime() - range.from.getTime()) / 3_600_000;
  if (hours >= 48) return `${+(hours / 24).toFixed(1)} days`;
  if (hours >= 1) return `${+hours.toFixed(1)} h`;
  return `${Math.round(hours * 60)} min`;
}
