/**
 * A backfill stopped half-way (a shutdown, a crash) resumes from its saved progress when it is asked for again with
 * the same range: the slices it finished are not read again, and the watermark stays where the incremental runs
 * left it throughout. A backfill of another range starts a scan of its own.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { runSync } from '../../src/sync/run-sync.ts';
import type { BackfillRange } from '../../src/types.ts';
import { createHarness, type Harness } from '../helpers/sync-harness.ts';

let h: Harness | undefined;

afterEach(async () => {
  await h?.close();
  h = undefined;
});

function backfill(harness: Harness, range: BackfillRange, signal?: AbortSignal) {
  const runtime = harness.runtime('cin7');
  return runSync({
    source: 'cin7',
    stream: runtime.streams[0]!,
    mode: 'backfill',
    range,
    client: runtime.client,
    db: harness.db,
    logger: harness.logger,
    settings: runtime.settings,
    signal,
  });
}

describe('a backfill stopped half-way', () => {
  it('resumes from its saved progress with the same range, and never moves the watermark', async () => {
    h = await createHarness({ env: { CIN7_PAGE_SIZE: '10', CIN7_SLICE_PAGES: '2' } });
    const harness = h;
    await harness.sync('cin7');
    const { watermark } = await harness.db.syncState.findFirstOrThrow({ where: { source: 'cin7' } });
    const stored = await harness.db.voucher.findMany({
      where: { source: 'cin7' },
      orderBy: { sourceCreatedAt: 'asc' },
    });
    const second = (i: number) => new Date(Math.ceil(stored[i]!.sourceCreatedAt!.getTime() / 1000) * 1000);
    const range = { from: second(100), to: second(400) };
    const inRange = stored.filter((v) => v.sourceCreatedAt! >= range.from && v.sourceCreatedAt! < range.to).length;

    // Stopped after a few slices, as a shutdown stops it: at a page boundary.
    const controller = new AbortController();
    const stop = harness.cin7.store.onListRequest(({ n }) => void (n === 40 && controller.abort()));
    await expect(backfill(harness, range, controller.signal)).rejects.toThrow();
    stop();
    const stopped = await harness.db.syncRun.findFirstOrThrow({ where: { mode: 'backfill' }, orderBy: { id: 'asc' } });
    expect(stopped.status).toBe('interrupted');
    const saved = (await harness.db.syncState.findFirstOrThrow({ where: { source: 'cin7' } })).progress as Record<
      string,
      { range: unknown; done: Record<string, unknown>; slices: { from: string; before: string }[] }
    >;
    expect(saved.backfill!.range).toEqual({
      from: range.from.toISOString().replace('.000Z', 'Z'),
      to: range.to.toISOString().replace('.000Z', 'Z'),
    });
    const finished = Object.keys(saved.backfill!.done).length;
    expect(finished).toBeGreaterThan(0);

    const done = Object.keys(saved.backfill!.done).map((index) => saved.backfill!.slices[Number(index)]!);
    const lows: number[] = [];
    harness.cin7.store.onListRequest(({ query }) => {
      const low = /CreatedDate>='([^']+)'/.exec(query.get('where') ?? '')?.[1];
      if (low) lows.push(Date.parse(low));
    });
    const resumed = await backfill(harness, range);
    // The slices finished before the stop were not read again: no request started inside one of them.
    expect(lows.length).toBeGreaterThan(0);
    for (const low of lows)
      for (const slice of done) expect(low >= Date.parse(slice.from) && low < Date.parse(slice.before)).toBe(false);
    expect(stopped.fetched + resumed.counters.fetched).toBeGreaterThanOrEqual(inRange);
    const after = await harness.db.syncState.findFirstOrThrow({ where: { source: 'cin7' } });
    expect(after.watermark).toEqual(watermark);
    expect(after.progress).toEqual({});
  }, 60_000);

  it('of another range is replaced by a new one: it reads its own range from the start', async () => {
    h = await createHarness({ env: { CIN7_PAGE_SIZE: '10', CIN7_SLICE_PAGES: '2' } });
    const harness = h;
    await harness.sync('cin7');
    const stored = await harness.db.voucher.findMany({
      where: { source: 'cin7' },
      orderBy: { sourceCreatedAt: 'asc' },
    });
    const second = (i: number) => new Date(Math.ceil(stored[i]!.sourceCreatedAt!.getTime() / 1000) * 1000);
    const controller = new AbortController();
    const stop = harness.cin7.store.onListRequest(({ n }) => void (n === 30 && controller.abort()));
    await expect(backfill(harness, { from: second(100), to: second(400) }, controller.signal)).rejects.toThrow();
    stop();
    const other = { from: second(400), to: second(500) };
    const inOther = stored.filter((v) => v.sourceCreatedAt! >= other.from && v.sourceCreatedAt! < other.to).length;
    const wheres: string[] = [];
    harness.cin7.store.onListRequest(({ query }) => void wheres.push(query.get('where') ?? ''));
    const result = await backfill(harness, other);
    expect(result.counters.fetched).toBeGreaterThanOrEqual(inOther);
    // Nothing of the first range's saved scan was read: every request lay in the new range.
    for (const where of wheres) {
      const low = Date.parse(/CreatedDate>='([^']+)'/.exec(where)![1]!);
      const high = Date.parse(/CreatedDate<'([^']+)'/.exec(where)![1]!);
      expect(low, where).toBeGreaterThanOrEqual(other.from.getTime());
      expect(high, where).toBeLessThanOrEqual(other.to.getTime());
    }
    expect((await harness.db.syncState.findFirstOrThrow({ where: { source: 'cin7' } })).progress).toEqual({});
  }, 60_000);
});
