/**
 * How long a source may go between runs of a schedule: what "stale" is measured against. For `{every}` that is
 * the interval itself; for a cron pattern, the longest gap between its coming occurrences, since a pattern such as
 * `0 9-17 * * 1-5` has short gaps and long ones (the weekend), and data that waits over the weekend as planned is
 * not stale. Patterns are read with cron-parser, as BullMQ's Job Schedulers read them.
 */
import { CronExpressionParser } from 'cron-parser';
import type { Schedule } from '../config.ts';

/** Occurrences looked at: over a week of an hourly pattern, enough to see its longest gap. */
const OCCURRENCES = 200;

/** The longest gap between runs, in ms; null when the schedule is off. */
export function scheduleIntervalMs(schedule: Schedule, now: Date = new Date()): number | null {
  if ('off' in schedule) return null;
  if ('every' in schedule) return schedule.every;
  const times = CronExpressionParser.parse(schedule.pattern, { currentDate: now })
    .take(OCCURRENCES)
    .map((date) => date.getTime());
  let longest = 0;
  for (let i = 1; i < times.length; i++) longest = Math.max(longest, times[i]! - times[i - 1]!);
  return longest > 0 ? longest : null;
}
