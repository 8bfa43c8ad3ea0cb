/**
 * What the demo does to its own database (`voucher_sync_demo`, see src/cli/demo.ts): drop it to start afresh, and
 * count what the sync stored, for the summary it prints.
 */
import pg from 'pg';
import { withDatabase } from './database-url.ts';

/** Drops the database of `databaseUrl` (FORCE ends its connections), connecting to `postgres` to do it. */
export async function dropDatabase(databaseUrl: string): Promise<void> {
  const name = decodeURIComponent(new URL(databaseUrl).pathname.slice(1));
  const admin = new pg.Client({ connectionString: withDatabase(databaseUrl, 'postgres') });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS "${name.replace(/"/g, '""')}" WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}

/** Vouchers by source and status, as BI tools see them, and the rejected records by source. */
export async function storedCounts(databaseUrl: string): Promise<{
  vouchers: { source: string; status: string; n: string }[];
  rejected: { source: string; n: string }[];
}> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const vouchers = await client.query<{ source: string; status: string; n: string }>(
      'SELECT source, status, count(*) AS n FROM reporting.vouchers GROUP BY source, status ORDER BY source, status',
    );
    const rejected = await client.query<{ source: string; n: string }>(
      'SELECT source, count(*) AS n FROM rejected_records GROUP BY source ORDER BY source',
    );
    return { vouchers: vouchers.rows, rejected: rejected.rows };
  } finally {
    await client.end();
  }
}
