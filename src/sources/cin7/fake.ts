/** Cin7 Omni's fake server (src/fake/cin7.ts) as the demo, `npm run fake`, the memory probe and the tests start it. */
import { createFakeCin7, type FakeCin7, type FakeCin7Options } from '../../fake/cin7.ts';
import type { SourceFake } from '../../fake/source-fake.ts';

export const cin7Fake = {
  label: 'Fake Cin7 Omni',
  key: 'cin7',
  port: 4020,
  create: (options) => createFakeCin7(options),
  env: (fake, baseUrl) => ({
    CIN7_BASE_URL: baseUrl,
    CIN7_USERNAME: fake.credentials.username,
    CIN7_API_KEY: fake.credentials.apiKey,
  }),
  test: {
    options: { seed: 7, count: 600, rateLimits: null },
    env: { CIN7_RATE_LIMIT: '1000/s', CIN7_DAILY_BUDGET: 'off' },
  },
  demo: {
    options: { count: 1_500 },
    seed: (fake) => void fake.store.insertMalformed('missing-code'),
    env: { CIN7_SCHEDULE: '15s', CIN7_RECONCILE_SCHEDULE: '2m' },
    note: 'Cin7 reconciles every 2 min',
  },
  async measure(fake, baseUrl, _count, pages) {
    const basic = `Basic ${Buffer.from(`${fake.credentials.username}:${fake.credentials.apiKey}`).toString('base64')}`;
    const started = performance.now();
    for (let page = 1; page <= pages; page++) {
      const where = encodeURIComponent("CreatedDate>='2020-01-01T00:00:00Z'");
      const response = await fetch(
        `${baseUrl}/v1/Voucher?where=${where}&order=CreatedDate&rows=250&page=${page * 70}`,
        {
          headers: { authorization: basic },
        },
      );
      await response.arrayBuffer();
    }
    return `Cin7: ${((performance.now() - started) / pages).toFixed(1)} ms per page of 250 (CreatedDate window)`;
  },
} satisfies SourceFake<FakeCin7, FakeCin7Options>;
