/**
 * Who runs a command, as the ledger and the status say who paused a source or cancelled a run: the command and the
 * operating-system user at the host (`voucher-sync cancel, ops@host-1`). Never a secret; the user is left out when
 * the system cannot say it (a container without a passwd entry).
 */
import { hostname, userInfo } from 'node:os';

export function operator(command: string): string {
  let user: string | null = null;
  try {
    user = userInfo().username;
  } catch {
    // No passwd entry: the host alone says where it came from.
  }
  return `${command}, ${user ? `${user}@` : ''}${hostname()}`.slice(0, 255);
}
