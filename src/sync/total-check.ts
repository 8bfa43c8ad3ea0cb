/**
 * A total the server reports (CareCloud `total_items`) is a hint for planning, never a stop; but when a
 * completed full scan and the total disagree, one of them is wrong, and the run says so (a warning in the
 * log and in its ledger row) rather than report a plain success.
 *
 * Churn explains some difference: a record deleted after the scan read it is read but no longer counted,
 * one created after the server counted is read but was not counted, and a rejected record is counted but
 * not stored as a row. So the check allows the records the scan rejected, plus 1 % of the larger figure
 * and at least TOTAL_TOLERANCE records; beyond that it warns.
 */

/** Records of difference always allowed between a full scan's reading and the reported total. */
export const TOTAL_TOLERANCE = 10;

export interface TotalCheck {
  /** The source, as named in the warning. */
  source: string;
  /** Distinct keys the full scan stored. */
  read: number;
  /** Records the scan rejected (counted by the server, not stored as rows). */
  rejected: number;
  /** The last total the server reported during the scan; null when it reported none. */
  reported: number | null;
}

/** The warning to record, or null when what was read and the reported total agree (within churn). */
export function totalWarning({ source, read, rejected, reported }: TotalCheck): string | null {
  if (reported === null) return null;
  const tolerance = Math.max(TOTAL_TOLERANCE, Math.ceil(Math.max(read, reported) / 100));
  if (reported >= read - tolerance && reported <= read + rejected + tolerance) return null;
  return (
    `the full scan read ${read} distinct records (and rejected ${rejected}), but ${source} reported a total of ${reported}: ` +
    `the reported total is wrong, or records changed heavily during the scan; the scan read on to the end regardless`
  );
}
