/**
 * Binds a QUEUE_PREFIX on one Redis to one database. Queues, schedulers, slices and the limiter all live under
 * the prefix, so two databases configured with the same prefix on the same Redis would silently hand each
 * other's runs to their workers, and `npm run sync` would report a run made against the other database.
 *
 * The binding is a lease: `<prefix>:database` holds the identity of the database (its `installation` row), and
 * `<prefix>:database:live` the processes that use it, each until LEASE_MS after its last renewal. A process
 * claims the prefix at start-up — refused while live processes of another database hold it — renews its lease
 * while it runs and gives it up when it stops. So a database dropped and made anew (a new identity) takes its
 * prefix back as soon as the old one's processes have stopped, or LEASE_MS after they died.
 */
import type { Redis } from 'ioredis';
import { ConfigError } from '../src/errors.ts';

/** How long a process's lease outlives its last renewal. Processes renew it every maintenance tick (30 s). */
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

// Atomically: forget lapsed leases; refuse when live processes of another database hold the prefix; otherwise
// bind it to this database and (re)new this process's lease. Returns what the binding holds now.
const CLAIM = `
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[3])
local current = redis.call('GET', KEYS[1])
if current and redis.call('ZCARD', KEYS[2]) > 0 then
  local ok, bound = pcall(cjson.decode, current)
  if not ok or type(bound) ~= 'table' or bound.id ~= ARGV[1] then return current end
end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], tonumber(ARGV[3]) + tonumber(ARGV[4]), ARGV[5])
return ARGV[2]`;

export const bindingKey = (prefix: string) => `${prefix}:database`;
const liveKey = (prefix: string) => `${prefix}:database:live`;

/** The identity held at the key when it is another database's, or null once the key is this database's. */
export async function claimPrefix(
  redis: Redis,
  prefix: string,
  identity: DatabaseIdentity,
  process: string,
  now = Date.now(),
): Promise<Bound | null> {
  const value = JSON.stringify({ ...identity, at: now } satisfies Bound);
  const held = (await redis.eval(
    CLAIM,
    2,
    bindingKey(prefix),
    liveKey(prefix),
    identity.id,
    value,
    String(now),
    String(LEASE_MS),
    process,
  )) as string;
  if (held === value) return null;
  try {
    const bound = JSON.parse(held) as Partial<Bound>;
    return {
      id: String(bound.id),
      described: String(bound.described ?? 'an unknown database'),
      at: Number(bound.at) || now,
    };
  } catch {
    return { id: 'unknown', described: `an unreadable binding (${held.slice(0, 60)})`, at: now };
  }
}

/** The one line a person reads when the prefix belongs to another database. */
export function prefixInUse(prefix: string, other: Bound, now = Date.now()): ConfigError {
  const ago = Math.max(0, Math.round((now - other.at) / 1000));
  return new ConfigError(
    `QUEUE_PREFIX "${prefix}" on this Redis is in use by another database (${other.described}, active ${ago} s ago): ` +
      `give each database its own QUEUE_PREFIX (it is free once that database's processes have stopped, or ${LEASE_MS / 60_000} minutes after they died)`,
  );
}

/** Claims the prefix for this database and process, or throws the line above. */
export async function bindPrefix(
  redis: Redis,
  prefix: string,
  identity: DatabaseIdentity,
  process: string,
): Promise<void> {
  const other = await claimPrefix(redis, prefix, identity, process);
  if (other) throw prefixInUse(prefix, other);
}

/** Gives up this process's lease: once no process of this database is left, another database may take the prefix. */
export async function releasePrefix(redis: Redis, prefix: string, process: string): Promise<void> {
  await redis.zrem(liveKey(prefix), process);
}
