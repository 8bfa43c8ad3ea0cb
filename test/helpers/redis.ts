import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';

export interface TestRedis {
  /** A connection for the test's own use. */
  redis: Redis;
  /** Every key the test makes starts with this, so cleanup finds them all. */
  prefix: string;
  /** Another connection, as a second worker process would have. Closed by cleanup. */
  newConnection(): Redis;
  /** Deletes the test's keys and closes every connection made here. */
  cleanup(): Promise<void>;
}

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

export function createTestRedis(): TestRedis {
  const prefix = `test:${randomUUID()}:`;
  const connections: Redis[] = [];
  const newConnection = () => {
    const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
    connections.push(connection);
    return connection;
  };
  const redis = newConnection();
  return {
    redis,
    prefix,
    newConnection,
    async cleanup() {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
        if (keys.length > 0) await redis.del(...keys);
        cursor = next;
      } while (cursor !== '0');
      await Promise.all(connections.map((c) => c.quit()));
    },
  };
}
