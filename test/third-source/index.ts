/**
 * A third source that exists only for tests: the proof that a source is one folder and one registry line. Its
 * settings (TINY_*), fake (fake-api.ts), client and stream are all here; test/integration/third-source.test.ts
 * registers it with `registerSource` (the stand-in for the line in src/sources/index.ts) and syncs it.
 */
import { defineSourceConfig, int, Secret, str, url, baseUrlOf } from '../../src/config-fields.ts';
import type { SourceFake } from '../../src/fake/source-fake.ts';
import { createHttpClient } from '../../src/http/create-http-client.ts';
import type { CallOptions, HttpContext } from '../../src/http/call-options.ts';
import { pageScan, type PageProgress } from '../../src/sync/page-scan.ts';
import type { MapResult, SourceDefinition, StreamDefinition } from '../../src/types.ts';
import { createTinyApi, type TinyApi, type TinyApiOptions } from './fake-api.ts';

export interface TinyConfig {
  baseUrl: string;
  token: Secret;
  pageSize: number;
}

export interface TinyClient {
  list(page: number, size: number, call: CallOptions): Promise<unknown[]>;
}

const tinyConfig = defineSourceConfig({
  variables: {
    TINY_BASE_URL: url(['http:', 'https:']).optional(),
    TINY_TOKEN: str.min(1).optional(),
    TINY_PAGE_SIZE: int(1, 100).default(10),
  },
  secrets: ['TINY_TOKEN'],
  credentials: ['TINY_BASE_URL', 'TINY_TOKEN'],
  section: (e): TinyConfig => ({
    baseUrl: baseUrlOf(e.TINY_BASE_URL!),
    token: new Secret(e.TINY_TOKEN!),
    pageSize: e.TINY_PAGE_SIZE,
  }),
});

const tinyFake = {
  label: 'Fake Tiny',
  key: 'tiny',
  port: 4030,
  create: (options) => createTinyApi(options),
  env: (fake, baseUrl) => ({ TINY_BASE_URL: baseUrl, TINY_TOKEN: fake.token }),
  test: { options: { count: 25 }, env: {} },
  demo: { options: { count: 12 }, seed: () => {}, env: {} },
} satisfies SourceFake<TinyApi, TinyApiOptions>;

export function mapTinyVoucher(raw: unknown): MapResult {
  const v = raw as Partial<Record<'id' | 'code' | 'amount' | 'created', unknown>>;
  if (
    typeof v?.id !== 'string' ||
    typeof v.code !== 'string' ||
    typeof v.amount !== 'number' ||
    typeof v.created !== 'string'
  ) {
    return {
      ok: false,
      reject: { sourceId: typeof v?.id === 'string' ? v.id : null, reason: 'not a tiny voucher', raw },
    };
  }
  const row = {
    sourceId: v.id,
    code: v.code,
    customerId: null,
    status: 'active',
    amount: String(v.amount),
    redeemedAmount: null,
  } as const;
  const dates = { validFrom: null, validTo: null, appliedAt: null, sourceCreatedAt: v.created, sourceModifiedAt: null };
  return { ok: true, row: { ...row, ...dates, isDeleted: false, raw } };
}

function createTinyVouchers(config: TinyConfig): StreamDefinition<TinyClient> {
  return {
    name: 'vouchers',
    cursorField: 'sourceCreatedAt',
    map: mapTinyVoucher,
    scan: ({ client, call, progress }) =>
      pageScan({
        fetch: (page, size) => client.list(page, size, call),
        rows: config.pageSize,
        start: (progress as PageProgress | null) ?? { page: 1 },
        keyOf: (record) => (record as { id?: string }).id,
        server: 'tiny',
      }),
  };
}

export const tiny = {
  name: 'tiny',
  config: tinyConfig,
  fake: tinyFake,
  settings: () => ({
    lookbackMs: 0,
    confirmMax: 10,
    limits: { windows: [{ max: 1000, windowMs: 1000 }], dailyBudget: null },
    schedules: { incremental: { off: true }, full: { off: true } },
  }),
  createClient: (config, deps): TinyClient => {
    const http = createHttpClient({
      source: 'tiny',
      baseUrl: config.baseUrl,
      baseUrlSetting: 'TINY_BASE_URL',
      ...deps,
      headers: { 'x-token': config.token.reveal() },
    });
    return {
      async list(page, size, call) {
        const context = { observer: call.observer } satisfies HttpContext;
        const { body } = await http.get<unknown[]>('items', {
          searchParams: { page, size },
          signal: call.signal,
          context,
        });
        return body;
      },
    };
  },
  createStreams: (config) => [createTinyVouchers(config)],
} satisfies SourceDefinition<TinyConfig, TinyClient>;
