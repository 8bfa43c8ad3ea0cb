import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { largeQueries } from '../../src/db/client.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase({ prefix: 'db_client' });
});

afterAll(async () => {
  await db?.drop();
});

// The assumption largeQueries rests on (see src/db/client.ts): the connection of a Prisma interactive
// transaction is found by its backend pid, and Prisma sends nothing on it between its statements. An
// upgrade of Prisma or its pg adapter that changes either fails here.
describe('largeQueries inside a Prisma transaction', () => {
  it('finds the transaction’s own connection: same backend, same transaction, its uncommitted writes seen, rolled back with it', async () => {
    await expect(
      db.prisma.$transaction(async (tx) => {
        await tx.$executeRawUnsafe(`INSERT INTO scan_seen (scan_id, source_id) VALUES (77, 'via-prisma')`);
        const query = await largeQueries(tx);
        expect({ inTransaction: query.inTransaction, direct: query.direct }).toEqual({
          inTransaction: true,
          direct: true,
        });
        const [prisma] = await tx.$queryRawUnsafe<{ pid: number; xid: string }[]>(
          'SELECT pg_backend_pid() AS pid, txid_current()::text AS xid',
        );
        const [direct] = await query<{ pid: number; xid: string; seen: number }>(
          `SELECT pg_backend_pid() AS pid, txid_current()::text AS xid, (SELECT count(*)::int FROM scan_seen WHERE scan_id = 77) AS seen`,
          [],
        );
        expect(direct).toEqual({ ...prisma, seen: 1 });
        await query(`INSERT INTO scan_seen (scan_id, source_id) VALUES (77, 'via-pg')`, []);
        // Prisma's next statement, on the same connection, sees what pg wrote.
        expect(await tx.scanSeen.count({ where: { scanId: 77n } })).toBe(2);
        throw new Error('roll back');
      }),
    ).rejects.toThrow('roll back');
    expect(await db.prisma.scanSeen.count({ where: { scanId: 77n } })).toBe(0);
  });

  it('outside a transaction, runs on the pool directly', async () => {
    const query = await largeQueries(db.prisma);
    expect({ inTransaction: query.inTransaction, direct: query.direct }).toEqual({
      inTransaction: false,
      direct: true,
    });
    expect(await query<{ one: number }>('SELECT 1 AS one', [])).toEqual([{ one: 1 }]);
  });
});
