/**
 * Set-up of `npm run test:fast`: any connection to PostgreSQL's or Redis's port fails at once, so that the fast
 * set stays free of the services (see vitest.fast.config.ts).
 */
import { Socket } from 'node:net';

const SERVICE_PORTS = new Set([5432, 6379]);
const connect = Socket.prototype.connect;

Socket.prototype.connect = function guardedConnect(this: Socket, ...args: unknown[]) {
  const [first, second] = args;
  const port = typeof first === 'object' && first !== null ? Number((first as { port?: unknown }).port) : Number(first);
  if (
    SERVICE_PORTS.has(port) ||
    (Array.isArray(first) && SERVICE_PORTS.has(Number((first[0] as { port?: unknown })?.port)))
  ) {
    throw new Error(
      `test:fast runs without PostgreSQL and Redis, but a test connected to port ${port}: move it to test/integration or test/db`,
    );
  }
  void second;
  return (connect as (...a: unknown[]) => Socket).apply(this, args);
} as typeof Socket.prototype.connect;
