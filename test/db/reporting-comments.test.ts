/**
 * The reporting schema describes itself: every view and every column of `reporting` has a COMMENT (Metabase and most
 * BI tools show them as descriptions), and docs/reporting.md lists exactly those views and columns with the
 * same words — one `#### reporting.<view>` heading per view, the view's description as the paragraph under it, then
 * a `| column | description |` table, one row per column in the view's order. Whoever adds a view or a column adds
 * both, or this fails and says what is missing where.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

interface Described {
  description: string | null;
  columns: { name: string; description: string | null }[];
}

/** Every view of `reporting` in the migrated database, by name, with its columns in order. */
async function viewsInDatabase(db: TestDatabase): Promise<Map<string, Described>> {
  const rows = await db.prisma.$queryRawUnsafe<
    { view: string; view_description: string | null; column: string; description: string | null }[]
  >(
    `SELECT c.relname AS view, obj_description(c.oid, 'pg_class') AS view_description,
            a.attname AS "column", col_description(c.oid, a.attnum) AS description
       FROM pg_class c
       JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      WHERE n.nspname = 'reporting' AND c.relkind IN ('v', 'm')
      ORDER BY c.relname, a.attnum`,
  );
  const views = new Map<string, Described>();
  for (const row of rows) {
    const view = views.get(row.view) ?? { description: row.view_description, columns: [] };
    view.columns.push({ name: row.column, description: row.description });
    views.set(row.view, view);
  }
  return views;
}

/** The views docs/reporting.md documents, parsed from the `#### reporting.<view>` parts of its "Views" section. */
function viewsInPage(markdown: string): Map<string, Described> {
  const start = markdown.indexOf('\n## Views\n');
  if (start < 0) throw new Error('docs/reporting.md has no "## Views" section');
  const end = markdown.indexOf('\n## ', start + 1);
  const section = markdown.slice(start, end < 0 ? undefined : end);
  const views = new Map<string, Described>();
  for (const part of section.split(/^#### /m).slice(1)) {
    const [heading = '', ...lines] = part.split('\n');
    const name = /^reporting\.(\w+)\s*$/.exec(heading)?.[1];
    if (name === undefined)
      throw new Error(`docs/reporting.md: "#### ${heading}" is not a heading "#### reporting.<view>"`);
    const paragraph = lines.slice(
      0,
      lines.findIndex((line, i) => i > 0 && line.trim() === ''),
    );
    const columns = lines
      .filter((line) => /^\|\s*`/.test(line))
      .map((line) => {
        const cells = line
          .slice(1, line.trimEnd().length - 1)
          .split(/(?<!\\)\|/)
          .map((cell) => cell.trim().replaceAll('\\|', '|'));
        return { name: cells[0]!.replace(/^`|`$/g, ''), description: cells[1] ?? null };
      });
    views.set(name, { description: paragraph.join(' ').trim() || null, columns });
  }
  return views;
}

let db: TestDatabase;
let database: Map<string, Described>;
let readme: Map<string, Described>;

beforeAll(async () => {
  db = await createTestDatabase({ prefix: 'comments' });
  database = await viewsInDatabase(db);
  readme = viewsInPage(readFileSync(new URL('../../docs/reporting.md', import.meta.url), 'utf8'));
});

afterAll(async () => {
  await db?.drop();
});

describe('the reporting schema and its description in docs/reporting.md', () => {
  it('has views, among them the vouchers and the sync status', () => {
    expect([...database.keys()]).toEqual(expect.arrayContaining(['vouchers', 'sync_status']));
  });

  it('describes every view and every column of every view (COMMENT ON)', () => {
    const undescribed = [...database].flatMap(([view, { description, columns }]) => [
      ...(description ? [] : [`reporting.${view}`]),
      ...columns.filter((c) => !c.description).map((c) => `reporting.${view}.${c.name}`),
    ]);
    expect(undescribed).toEqual([]);
  });

  it('lists in docs/reporting.md exactly the views of the schema', () => {
    expect([...readme.keys()].sort()).toEqual([...database.keys()].sort());
  });

  it.each(['vouchers', 'sync_status'])('reporting.%s: docs/reporting.md reads as the database describes it', (view) => {
    expect(readme.get(view)).toEqual(database.get(view));
  });

  it('every other view of the schema: docs/reporting.md reads as the database describes it', () => {
    const others = [...database.keys()].filter((view) => view !== 'vouchers' && view !== 'sync_status');
    for (const view of others) expect(readme.get(view), `reporting.${view}`).toEqual(database.get(view));
  });
});
