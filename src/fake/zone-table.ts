import { IANAZone } from 'luxon';

/** One change of a zone's UTC offset. Offsets are in minutes. */
export interface ZoneTransition {
  at: number;
  before: number;
  after: number;
}

/**
 * The offsets of one IANA zone over a span of time, looked up without Intl. Rendering a million local
 * times through luxon would take many seconds; the transitions of a few years are a handful of entries.
 */
export interface ZoneTable {
  readonly zone: string;
  readonly transitions: readonly ZoneTransition[];
  /** UTC offset in minutes at an instant (ms). */
  offsetAt(ms: number): number;
  /** The wall-clock reading at an instant, expressed as if the wall clock were UTC (ms). */
  wallAt(ms: number): number;
  /** Wall-clock spans (ms, end excluded) that never happen: the spring-forward gaps. */
  gaps(): Array<[number, number]>;
  /** Wall-clock spans (ms, end excluded) that happen twice: the autumn repeated hours. */
  overlaps(): Array<[number, number]>;
}

const DAY = 86_400_000;

export function createZoneTable(zone: string, fromMs: number, toMs: number): ZoneTable {
  const iana = IANAZone.create(zone);
  if (!iana.isValid) throw new RangeError(`unknown time zone ${zone}`);
  const transitions: ZoneTransition[] = [];
  // Offsets change at most a few times a year, so daily probes find every change; bisection pins it down.
  let previous = iana.offset(fromMs);
  for (let t = fromMs + DAY; t < toMs + DAY; t += DAY) {
    const current = iana.offset(t);
    if (current === previous) continue;
    let low = t - DAY;
    let high = t;
    while (high - low > 1) {
      const middle = Math.floor((low + high) / 2);
      if (iana.offset(middle) === previous) low = middle;
      else high = middle;
    }
    transitions.push({ at: high, before: previous, after: current });
    previous = current;
  }

  const offsetAt = (ms: number): number => {
    if (ms < fromMs || ms > toMs + DAY) return iana.offset(ms);
    let offset = iana.offset(fromMs);
    for (const transition of transitions) {
      if (transition.at > ms) break;
      offset = transition.after;
    }
    return offset;
  };
  const spans = (forward: boolean) =>
    transitions
      .filter((t) => t.after > t.before === forward)
      .map((t): [number, number] => {
        const low = Math.min(t.before, t.after) * 60_000;
        const high = Math.max(t.before, t.after) * 60_000;
        return [t.at + low, t.at + high];
      });
  return {
    zone,
    transitions,
    offsetAt,
    wallAt: (ms) => ms + offsetAt(ms) * 60_000,
    gaps: () => spans(true),
    overlaps: () => spans(false),
  };
}

/** `YYYY-MM-DD HH:MM:SS` of a wall-clock reading held as UTC milliseconds. */
export function formatWall(wallMs: number, separator = ' '): string {
  const iso = new Date(wallMs).toISOString();
  return `${iso.slice(0, 10)}${separator}${iso.slice(11, 19)}`;
}

const WALL = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})$/;

/**
 * Reads `YYYY-MM-DD HH:MM:SS` (or with `T`) as a wall-clock reading in UTC milliseconds. Impossible dates
 * such as `0000-00-00 00:00:00` give -Infinity, so they sort first like a MySQL zero date; other text NaN.
 */
export function parseWall(text: string): number {
  const match = WALL.exec(text);
  if (!match) return Number.NaN;
  const [year, month, day, hour, minute, second] = match.slice(1).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  if (year === 0 || month === 0 || day === 0) return Number.NEGATIVE_INFINITY;
  const ms = Date.UTC(year, month - 1, day, hour, minute, second);
  return new Date(ms).getUTCDate() === day ? ms : Number.NaN;
}
