/**
 * Records that break a run, and stored times that block every later change (issue #9, items 2 and 5),
 * against the hostile proxy (test/hostile/) in front of the realistic fakes.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { isServiceCode } from '../../src/fake/carecloud-data.ts';
import { loadConfig } from '../../src/config.ts';
import { parseLocalDateTime } from '../../src/sources/parse.ts';
import { runSync } from '../../src/sync/run-sync.ts';
import { createSourceRuntimes } from '../../jobs/runtime.ts';
import { carecloudKey, cin7Key, poisonRecords, type Poison } from '../hostile/record-behaviours.ts';
import { createHarness, type Harness } from '../helpers/sync-harness.ts';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

/** Every well-formed, non-service voucher the fake CareCloud serves. */
const careCloudTruth = (harness: Harness) => harness.careCloud.store.all().filter((v) => !isServiceCode(v.code));

const rejectedOf = (harness: Harness, source: string, ids: string[]) =>
  harness.db.rejectedRecord.findMany({ where: { source, sourceId: { in: ids } }, orderBy: { sourceId: 'asc' } });

const lastRun = (harness: Harness, source: string) =>
  harness.db.syncRun.findFirstOrThrow({ where: { source }, orderBy: { id: 'desc' } });

describe('poison records', () => {
  it('CareCloud: lone surrogates in a value or a nested key and a note 10,000 levels deep are rejected; the rest is stored, and retries pass', async () => {
    h = await createHarness({ hostile: true, careCloud: { count: 300 } });
    const ids = careCloudTruth(h).map((v) => v.voucher_id);
    const poisons = new Map<string, Poison>([
      [ids[10]!, 'surrogate-value'],
      [ids[150]!, 'surrogate-key'],
      [ids[290]!, 'deep-note'],
    ]);
    h.hostile.carecloud.set(poisonRecords(carecloudKey, poisons));

    const first = await h.sync('carecloud', 'incremental');
    expect(first.counters.rejected).toBeGreaterThanOrEqual(3);
    const rows = await h.vouchers('carecloud');
    expect(rows.map((r) => r.sourceId).sort()).toEqual(ids.filter((id) => !poisons.has(id)).sort());
    const rejects = await rejectedOf(h, 'carecloud', [...poisons.keys()]);
    expect(Object.fromEntries(rejects.map((r) => [r.sourceId, r.reason]))).toEqual({
      [ids[10]!]:
        'row.raw.note contains a lone UTF-16 surrogate (U+D800 at character 1), which PostgreSQL cannot store',
      [ids[150]!]:
        'a key of row.raw.extra.details contains a lone UTF-16 surrogate (U+DC00 at character 3), which PostgreSQL cannot store',
      [ids[290]!]: expect.stringMatching(
        /^raw\.note\.n\.n.*… is nested more than 1000 levels deep, too deep to be written as JSON$/,
      ),
    });
    expect((await lastRun(h, 'carecloud')).status).toBe('succeeded');

    // A full scan reads them again (and looks the unseen ones up by id, poisoned there too): it succeeds,
    // stores nothing more of them, deletes nothing, and counts each reject again.
    const full = await h.sync('carecloud', 'full');
    expect(full.counters.deleted).toBe(0);
    expect((await lastRun(h, 'carecloud')).status).toBe('succeeded');
    expect((await h.vouchers('carecloud')).length).toBe(ids.length - 3);
    expect((await rejectedOf(h, 'carecloud', [...poisons.keys()])).every((r) => r.timesSeen >= 2)).toBe(true);
  });

  it('CareCloud: a lone surrogate in voucher_id, the key the scan anchors its pages on, is rejected; the scan goes on', async () => {
    h = await createHarness({ hostile: true, careCloud: { count: 300 } });
    const ids = careCloudTruth(h).map((v) => v.voucher_id);
    // The second-to-last record of the first page: its key is among the anchors saved with the page.
    const poisoned = new Set([ids[98]!, ids[198]!]);
    h.hostile.carecloud.set(
      poisonRecords(carecloudKey, new Map([...poisoned].map((id) => [id, 'surrogate-id' as const]))),
    );
    await h.sync('carecloud', 'full');
    expect((await lastRun(h, 'carecloud')).status).toBe('succeeded');
    expect((await h.vouchers('carecloud')).map((r) => r.sourceId).sort()).toEqual(
      ids.filter((id) => !poisoned.has(id)).sort(),
    );
    const rejects = await h.db.rejectedRecord.findMany({
      where: { source: 'carecloud', reason: { contains: 'lone UTF-16 surrogate' } },
    });
    expect(rejects.map((r) => r.reason)).toEqual([
      expect.stringMatching(/^row\.raw\.voucher_id contains a lone UTF-16 surrogate \(U\+D800/),
      expect.stringMatching(/^row\.raw\.voucher_id contains a lone UTF-16 surrogate \(U\+D800/),
    ]);
  });

  it('Cin7: a lone surrogate in one of 300 vouchers: the 299 others are stored, the run succeeds, a retry too', async () => {
    h = await createHarness({ hostile: true, cin7: { count: 300 } });
    const codes = h.cin7.store.all().map((v) => v.code);
    const poisoned = codes[123]!;
    h.hostile.cin7.set(poisonRecords(cin7Key, new Map([[poisoned, 'surrogate-value']])));
    await h.sync('cin7', 'full');
    expect((await lastRun(h, 'cin7')).status).toBe('succeeded');
    expect((await h.vouchers('cin7')).map((r) => r.sourceId).sort()).toEqual(
      codes.filter((c) => c !== poisoned).sort(),
    );
    const [reject] = await rejectedOf(h, 'cin7', [poisoned]);
    expect(reject?.reason).toBe(
      'row.raw.note contains a lone UTF-16 surrogate (U+D800 at character 1), which PostgreSQL cannot store',
    );
    expect(reject?.raw).toMatchObject({ note: 'a\uFFFDb' });
    await h.sync('cin7', 'full');
    expect((await lastRun(h, 'cin7')).status).toBe('succeeded');
    expect((await h.vouchers('cin7')).length).toBe(codes.length - 1);
  });
});

describe('implausible stored times', () => {
  it('a last_change in 2099 stored by an earlier version blocks no later change, incremental or full; one arriving now is rejected and moves no watermark', async () => {
    h = await createHarness({ hostile: true, careCloud: { count: 300 } });
    await h.sync('carecloud');
    const [a, b, c] = careCloudTruth(h);
    const poisonStored = (id: string) =>
      h!.db
        .$executeRaw`UPDATE vouchers SET source_modified_at = '2099-01-01T00:00:00Z' WHERE source = 'carecloud' AND source_id = ${id}`;
    const row = async (id: string) =>
      await h!.db.voucher.findUniqueOrThrow({ where: { source_sourceId: { source: 'carecloud', sourceId: id } } });

    await poisonStored(a!.voucher_id);
    const deleted = h.careCloud.store.softDelete(a!.voucher_id);
    await h.sync('carecloud', 'incremental');
    expect(await row(a!.voucher_id)).toMatchObject({
      isDeleted: true,
      raw: deleted,
      sourceModifiedAt: new Date(parseLocalDateTime(deleted.last_change!, h.careCloud.timezone)),
    });

    await poisonStored(b!.voucher_id);
    const changed = h.careCloud.store.update(b!.voucher_id);
    await h.sync('carecloud', 'full');
    expect(await row(b!.voucher_id)).toMatchObject({ raw: changed });

    // Now the server itself sends 2099.
    const watermarkBefore = (await h.db.syncState.findFirstOrThrow({ where: { source: 'carecloud' } })).watermark!;
    h.careCloud.store.update(c!.voucher_id);
    h.hostile.carecloud.set(poisonRecords(carecloudKey, new Map([[c!.voucher_id, 'future-change']])));
    const started = Date.now();
    const run = await h.sync('carecloud', 'incremental');
    expect((await lastRun(h, 'carecloud')).status).toBe('succeeded');
    const [reject] = await rejectedOf(h, 'carecloud', [c!.voucher_id]);
    expect(reject?.reason).toMatch(
      /^sourceModifiedAt 2098-12-31T23:00:00\.000Z is more than 60 minutes after the time of the sync/,
    );
    expect(run.watermarkAfter!.getTime()).toBeLessThan(started + 60_000);
    expect(run.watermarkAfter!.getTime()).toBeGreaterThanOrEqual(watermarkBefore.getTime());
    expect((await row(c!.voucher_id)).sourceModifiedAt!.getFullYear()).toBeLessThan(2099);
  });

  it('a wrong CARECLOUD_TIMEZONE corrected later: the stored times are recomputed and every change since (deletions included) is stored', async () => {
    // New York is 6 hours behind Prague: read there, every time is 6 hours late.
    h = await createHarness({ careCloud: { count: 300 }, env: { CARECLOUD_TIMEZONE: 'America/New_York' } });
    await h.sync('carecloud');
    const vouchers = careCloudTruth(h);
    for (const v of vouchers.slice(0, 5)) h.careCloud.store.update(v.voucher_id);
    for (const v of vouchers.slice(5, 10)) h.careCloud.store.softDelete(v.voucher_id);
    h.careCloud.store.insert();

    const config = loadConfig({ ...h.env, CARECLOUD_TIMEZONE: h.careCloud.timezone });
    const [runtime] = createSourceRuntimes(config, { redis: h.redis, logger: h.logger }).filter(
      (r) => r.name === 'carecloud',
    );
    const run = await runSync({
      source: 'carecloud',
      stream: runtime!.streams[0]!,
      mode: 'incremental',
      client: runtime!.client,
      db: h.db,
      logger: h.logger,
      settings: runtime!.settings,
    });
    expect((await lastRun(h, 'carecloud')).status).toBe('succeeded');
    expect(run.counters.updated).toBeGreaterThanOrEqual(10);

    const truth = careCloudTruth(h);
    const rows = new Map((await h.vouchers('carecloud')).map((r) => [r.sourceId, r]));
    expect(rows.size).toBe(truth.length);
    for (const v of truth) {
      const stored = rows.get(v.voucher_id);
      expect(stored?.raw, v.voucher_id).toEqual(v);
      expect(stored?.isDeleted).toBe(v.state === 0);
      expect(stored?.sourceModifiedAt?.toISOString()).toBe(parseLocalDateTime(v.last_change!, h.careCloud.timezone));
      if (v.created_at)
        expect(stored?.sourceCreatedAt?.toISOString()).toBe(parseLocalDateTime(v.created_at, h.careCloud.timezone));
    }
    const state = await h.db.syncState.findFirstOrThrow({ where: { source: 'carecloud' } });
    expect(state.mappingKey).toBe(`timezone=${h.careCloud.timezone}`);
    expect(h.logLines.some((line) => line.includes('the mapping changed since the stored rows were written'))).toBe(
      true,
    );
  });
});
