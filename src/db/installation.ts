import type { Db } from './client.ts';

/**
 * This database's identity (`installation.id`, made by its migration). A database dropped and created anew
 * gets a new one; a row removed by hand is made again.
 */
export async function installationId(db: Db): Promise<string> {
  const row =
    (await db.installation.findFirst({ orderBy: { createdAt: 'asc' } })) ??
    (await db.installation.create({ data: {} }));
  return row.id;
}
