import type { ZoneTable } from './zone-table.ts';

/**
 * Cin7 dates carry seven fractional digits (.NET ticks of 100 ns). They are held as ticks since 2015-01-01
 * UTC in a double: exact to the tick until about 2043, which a fake can live with.
 */
const EPOCH = Date.UTC(2015, 0, 1);
const TICKS_PER_MS = 10_000;

export const ticksOf = (ms: number, subMs = 0) => (ms - EPOCH) * TICKS_PER_MS + subMs;
export const msOfTicks = (ticks: number) => EPOCH + Math.floor(ticks / TICKS_PER_MS);

/** `2021-05-09T15:52:29.2618824+12:00` in the table's zone, or without offset (meaning UTC). */
export function formatCin7Date(ticks: number, table: ZoneTable | undefined): string {
  const ms = msOfTicks(ticks);
  const fraction = String((ms % 1000) * TICKS_PER_MS + (ticks - ticksOf(ms))).padStart(7, '0');
  if (!table) return `${new Date(ms).toISOString().slice(0, 19)}.${fraction}`;
  const offset = table.offsetAt(ms);
  const sign = offset < 0 ? '-' : '+';
  const hours = String(Math.floor(Math.abs(offset) / 60)).padStart(2, '0');
  const minutes = String(Math.abs(offset) % 60).padStart(2, '0');
  return `${new Date(ms + offset * 60_000).toISOString().slice(0, 19)}.${fraction}${sign}${hours}:${minutes}`;
}

const DATE = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?)?(Z|[+-]\d{2}:?\d{2})?$/i;

/**
 * Ticks of an ISO date with or without time, fraction (up to 7 digits) and offset; no offset means UTC.
 * Zero dates (`0000-00-00…`) give -Infinity so they sort first; anything else unreadable gives NaN.
 */
export function parseCin7Date(text: string): number {
  const match = DATE.exec(text.trim());
  if (!match) return Number.NaN;
  const [year, month, day, hour = 0, minute = 0, second = 0] = match
    .slice(1, 7)
    .map((part) => Number(part ?? 0)) as number[];
  if (year === 0 || month === 0 || day === 0) return Number.NEGATIVE_INFINITY;
  const wall = Date.UTC(year!, month! - 1, day!, hour, minute, second);
  if (new Date(wall).getUTCDate() !== day || hour > 23 || minute > 59 || second > 59) return Number.NaN;
  const fraction = Number((match[7] ?? '').padEnd(7, '0'));
  const zone = match[8];
  let offsetMinutes = 0;
  if (zone && zone.toUpperCase() !== 'Z') {
    const digits = zone.replace(':', '');
    offsetMinutes = (zone.startsWith('-') ? -1 : 1) * (Number(digits.slice(1, 3)) * 60 + Number(digits.slice(3, 5)));
  }
  return ticksOf(wall - offsetMinutes * 60_000) + fraction;
}
