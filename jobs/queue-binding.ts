/**
 * Binds a QUEUE_PREFIX on one Redis to one database. Queues, schedulers, slices and the limiter all live under
 * the prefix, so two databases configured with the same prefix on the same Redis would silently hand each
 * other's runs to their workers, and `npm run sync` would report a run made against the other database.
 *
 * The binding is a lease: `<prefix>:database` holds the identity of the database (its `installation` row) and
 * expires LEASE_MS after the last process of that database stopped renewing it. Every process claims it at
 * start-up (a claim that finds another database there refuses to start) and renews it while it runs. A lease
 * rather than a permanent mark, so that a database that is dropped and made anew (a new identity) can take
 * its prefix back once the old one's processes have stopped, without anyone deleting keys by hand.
 */
import type { Redis } from 'ioredis';
import { ConfigError } from '../src/errors.ts';

/** How long a binding outlives the last renewal. Processes renew it every maintenance tick (30 s). */
export const LEASE_MS = 120_000;

export interface DatabaseIdentity {
  /** The database's `installation.id`. */
  id: string;
  /** `user@host:port/name`, never a password: for the message a person reads. */
  described: string;
}

interface Bound extends DatabaseIdentity {
  /** Epoch ms of the last claim or renewal. */
  at: number;
}

// Claims the key when it is free or already ours (renewing it), atomically; returns what it holds now.
const CLAIM = `
local current = redis.call('GET', KEYS[1])
if current then
  local ok, bound = pcall(cjson.decode, current)
  if not ok or type(bound) ~= 'table' or bound.id ~= ARGV[1] then return current end
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return ARGV[2]`;

export const bindingKey = (prefix: string) => `${prefix}:database`;

/** The identity held at the key when it is another database's, or null once the key is this database's. */
export async function claimPrefix(redis: Redis, prefix: string, identity: DatabaseIdentity, now = Date.now()): Promise<Bound | null> {
  const value = JSON.stringify({ ...identity, at: now } satisfies Bound);
  const held = (await redis.eval(CLAIM, 1, bindingKey(prefix), identity.id, value, String(LEASE_MS))) as string;
  if (held === value) return null;
  try {
    const bound = JSON.parse(held) as Partial<Bound>;
    return { id: String(bound.id), described: String(bound.described ?? 'an unknown database'), at: Number(bound.at) || now };
  } catch {
    return { id: 'unknown', described: `an unreadable binding (${held.slice(0, 60)})`, at: now };
  }
}

/** The one line a person reads when the prefix belongs to another database. */
export function prefixInUse(prefix: string, other: Bound, now = Date.now()): ConfigError {
  const ago = Math.max(0, Math.round((now - other.at) / 1000));
  return new ConfigError(
    `QUEUE_PREFIX "${prefix}" on this Redis is in use by another database (${other.described}, active ${ago} s ago): ` +
      `give each database its own QUEUE_PREFIX (a stopped database's claim lapses ${LEASE_MS / 60_000} minutes after its last process stops)`,
  );
}

/** Claims the prefix for this database, or throws the line above. */
export async function bindPrefix(redis: Redis, prefix: string, identity: DatabaseIdentity): Promise<void> {
  const other = await claimPrefix(redis, prefix, identity);
  if (other) throw prefixInUse(prefix, other);
}
