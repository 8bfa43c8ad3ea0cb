/**
 * The page size found at run time as sync_state keeps it (src/db/page-size.ts): each write moves one bound in SQL the
 * way the engine's own rules do (afterAccepted, afterRefused), whatever order workers write in, and makes the row
 * when there is none yet.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { readPageSize, recordPageSizeAccepted, recordPageSizeRefused } from '../../src/db/page-size.ts';
import { afterAccepted, afterRefused, type PageSizeBounds } from '../../src/sync/page-size.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase({ prefix: 'page_size' });
});
afterAll(async () => {
  await db?.drop();
});
beforeEach(async () => {
  await db.prisma.$executeRawUnsafe('TRUNCATE sync_state');
});

const AT = new Date('2026-12-06T10:00:00Z');
type Step = { accepted: number } | { refused: number; hint?: number };
const bounds = async () => {
  const { accepted, refused } = await readPageSize(db.prisma, 'carecloud', 'vouchers');
  return { accepted, refused };
};

async function apply(steps: Step[]): Promise<PageSizeBounds> {
  for (const step of steps) {
    if ('accepted' in step) await recordPageSizeAccepted(db.prisma, 'carecloud', 'vouchers', step.accepted, AT);
    else
      await recordPageSizeRefused(
        db.prisma,
        'carecloud',
        'vouchers',
        { size: step.refused, hint: step.hint ?? null },
        AT,
      );
  }
  return bounds();
}

const expected = (steps: Step[]) =>
  steps.reduce<PageSizeBounds>(
    (b, step) => ('accepted' in step ? afterAccepted(b, step.accepted) : afterRefused(b, step.refused)),
    { accepted: null, refused: null },
  );

describe('the page size kept in sync_state', () => {
  it('reads nothing for a stream never run, and makes its row at the first write', async () => {
    expect(await readPageSize(db.prisma, 'carecloud', 'vouchers')).toEqual({
      accepted: null,
      refused: null,
      hint: null,
      checkedAt: null,
    });
    await recordPageSizeRefused(db.prisma, 'carecloud', 'vouchers', { size: 1000, hint: 700 }, AT);
    expect(await readPageSize(db.prisma, 'carecloud', 'vouchers')).toEqual({
      accepted: null,
      refused: 1000,
      hint: 700,
      checkedAt: AT,
    });
  });

  it.each<[string, Step[]]>([
    ['a search', [{ refused: 1000, hint: 700 }, { accepted: 700 }, { refused: 701 }]],
    ['a stale acceptance written late', [{ refused: 1000 }, { accepted: 500 }, { accepted: 300 }, { refused: 750 }]],
    ['a maximum lowered', [{ accepted: 1000 }, { refused: 1000 }, { accepted: 400 }, { refused: 401 }]],
    ['a maximum raised', [{ accepted: 700 }, { refused: 701 }, { accepted: 900 }]],
    ['two workers refused in either order', [{ accepted: 700 }, { refused: 900 }, { refused: 800 }, { refused: 950 }]],
  ])('moves the bounds as the engine does: %s', async (_, steps) => {
    expect(await apply(steps)).toEqual(expected(steps));
  });
});
