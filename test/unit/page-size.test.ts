import { describe, expect, it } from 'vitest';
import { FatalSourceError, PageSizeRefusedError } from '../../src/errors.ts';
import { createLogger } from '../../src/logger.ts';
import { offsetScan } from '../../src/sync/offset-scan.ts';
import {
  afterAccepted,
  afterRefused,
  createPageSizing,
  isSettled,
  nextPageSize,
  settlePageSize,
  type PageSizeBounds,
} from '../../src/sync/page-size.ts';

const CEILING = 1000;
const logger = createLogger('silent');
const nothing: PageSizeBounds = { accepted: null, refused: null };

/** A server that accepts pages up to `max` (`max` may change), its 400 naming the maximum when `named`. */
function server(initialMax: number, named = true) {
  const state = { max: initialMax, asked: [] as number[] };
  const send = async (size: number) => {
    state.asked.push(size);
    if (size > state.max) {
      const hint = named ? state.max : undefined;
      throw new PageSizeRefusedError(`count must be from 1 to ${named ? state.max : '?'}`, size, hint);
    }
    return size;
  };
  return { state, send };
}

/** A PageSizing over bounds kept in memory, as sync_state would keep them. */
function sizingOf(bounds: PageSizeBounds = nothing) {
  const kept = { bounds, writes: 0 };
  const sizing = createPageSizing({
    source: 'carecloud',
    parameter: 'count',
    ceiling: CEILING,
    bounds,
    logger,
    async remember(change) {
      kept.writes++;
      kept.bounds =
        'accepted' in change ? afterAccepted(kept.bounds, change.accepted) : afterRefused(kept.bounds, change.refused);
    },
  });
  return { sizing, kept };
}

describe('the page size rules', () => {
  it('asks for the ceiling until something is refused, and is settled once the ceiling is accepted', () => {
    expect(nextPageSize(nothing, CEILING)).toBe(1000);
    expect(isSettled(nothing, CEILING)).toBe(false);
    expect(isSettled({ accepted: 1000, refused: null }, CEILING)).toBe(true);
    expect(nextPageSize({ accepted: 1000, refused: null }, CEILING)).toBe(1000);
  });

  it('tries the maximum a refusal names, then one more to confirm it; without a hint, the middle', () => {
    expect(nextPageSize({ accepted: null, refused: 1000 }, CEILING, 700)).toBe(700);
    expect(nextPageSize({ accepted: 700, refused: 1000 }, CEILING, 700)).toBe(701);
    expect(isSettled({ accepted: 700, refused: 701 }, CEILING)).toBe(true);
    expect(nextPageSize({ accepted: 700, refused: 701 }, CEILING, 700)).toBe(700);
    expect(nextPageSize({ accepted: null, refused: 1000 }, CEILING)).toBe(500);
    expect(nextPageSize({ accepted: 500, refused: 1000 }, CEILING)).toBe(750);
    // A hint outside what is still possible is ignored.
    expect(nextPageSize({ accepted: 500, refused: 750 }, CEILING, 900)).toBe(625);
  });

  it('has no size left once 1 is refused', () => {
    expect(nextPageSize({ accepted: null, refused: 1 }, CEILING)).toBe(0);
    expect(isSettled({ accepted: null, refused: 1 }, CEILING)).toBe(false);
  });

  it('drops a bound the other disproves: the source lowered or raised its maximum', () => {
    expect(afterRefused({ accepted: 1000, refused: null }, 1000)).toEqual({ accepted: null, refused: 1000 });
    expect(afterRefused({ accepted: 500, refused: 1000 }, 750)).toEqual({ accepted: 500, refused: 750 });
    expect(afterAccepted({ accepted: 700, refused: 701 }, 900)).toEqual({ accepted: 900, refused: null });
    expect(afterAccepted({ accepted: 700, refused: 701 }, 300)).toEqual({ accepted: 700, refused: 701 });
  });
});

describe('createPageSizing and settlePageSize', () => {
  it('finds a maximum its refusals name in three requests and remembers it', async () => {
    const api = server(700);
    const { sizing, kept } = sizingOf();
    await settlePageSize(sizing, api.send);
    expect(api.state.asked).toEqual([1000, 700, 701]);
    expect(kept.bounds).toEqual({ accepted: 700, refused: 701 });
    expect(sizing.settled).toBe(true);
    expect(sizing.next()).toBe(700);
  });

  it('finds any maximum by halving when the refusals name none, in about log2(ceiling) requests', async () => {
    for (const max of [1, 2, 333, 999, 1000]) {
      const api = server(max, false);
      const { sizing, kept } = sizingOf();
      await settlePageSize(sizing, api.send);
      expect(sizing.next(), `max ${max}`).toBe(max);
      expect(kept.bounds.accepted).toBe(max);
      expect(api.state.asked.length, `max ${max}: ${api.state.asked.join(',')}`).toBeLessThanOrEqual(12);
    }
  });

  it('asks for what is remembered without probing, and writes nothing while nothing moves', async () => {
    const api = server(700);
    const { sizing, kept } = sizingOf({ accepted: 700, refused: 701 });
    await settlePageSize(sizing, api.send);
    expect(api.state.asked).toEqual([700]);
    expect(kept.writes).toBe(0);
  });

  it('steps down again when the remembered size is refused later', async () => {
    const api = server(400);
    const { sizing, kept } = sizingOf({ accepted: 700, refused: 701 });
    await settlePageSize(sizing, api.send);
    expect(api.state.asked).toEqual([700, 400, 401]);
    expect(kept.bounds).toEqual({ accepted: 400, refused: 401 });
  });

  it('fails naming the parameter when even one record is refused', async () => {
    const api = server(0, false);
    const { sizing } = sizingOf();
    const error = await settlePageSize(sizing, api.send).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FatalSourceError);
    expect((error as Error).message).toMatch(/carecloud refuses even a page of 1 record: its 400 names `count`/);
    expect(api.state.asked.length).toBeLessThanOrEqual(11);
  });
});

describe('offsetScan with a page size found at run time', () => {
  const rows = Array.from({ length: 5000 }, (_, i) => ({ id: `v${i}`, t: i }));

  async function scan(api: ReturnType<typeof server>, sizing: ReturnType<typeof sizingOf>['sizing']) {
    const seen: string[] = [];
    const pages = offsetScan({
      fetch: async (offset, count) => {
        await api.send(count);
        return { records: rows.slice(offset, offset + count), total: rows.length };
      },
      pageSize: CEILING,
      sizing,
      overlap: 5,
      direction: 'ASC',
      keyOf: (r) => (r as { id: string }).id,
      cursorOf: (r) => (r as { t: number }).t,
      requireEmptyPage: true,
    });
    for await (const page of pages) seen.push(...page.records.map((r) => (r as { id: string }).id));
    return seen;
  }

  it('reads every record once while it finds the size, and only refusals cost a request', async () => {
    const api = server(333, false);
    const { sizing, kept } = sizingOf();
    const seen = await scan(api, sizing);
    expect(seen).toEqual(rows.map((r) => r.id));
    expect(kept.bounds).toEqual({ accepted: 333, refused: 334 });
    const refused = api.state.asked.filter((size) => size > 333).length;
    const accepted = api.state.asked.length - refused;
    // Each accepted request reads new records: 5000 records in pages of at most 333 less the one re-read.
    expect(accepted).toBeLessThanOrEqual(Math.ceil(5000 / 332) + 4);
    expect(refused).toBeLessThanOrEqual(10);
  });

  it('reads every record once when the source lowers its maximum in the middle of the scan', async () => {
    const api = server(1000);
    const { sizing, kept } = sizingOf({ accepted: 1000, refused: null });
    const send = api.send;
    api.send = async (size) => {
      if (api.state.asked.length === 2) api.state.max = 250;
      return send(size);
    };
    const seen = await scan(api, sizing);
    expect(seen).toEqual(rows.map((r) => r.id));
    expect(kept.bounds).toEqual({ accepted: 250, refused: 251 });
    expect(api.state.asked.filter((size) => size > 250)).toEqual([1000, 1000, 1000, 251]);
  });
});
