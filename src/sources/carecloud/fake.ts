/** CareCloud's fake server (src/fake/carecloud.ts) as the demo, `npm run fake`, the memory probe and the tests start it. */
import { createFakeCareCloud, type FakeCareCloud, type FakeCareCloudOptions } from '../../fake/carecloud.ts';
import type { SourceFake } from '../../fake/source-fake.ts';

export const careCloudFake = {
  label: 'Fake CareCloud',
  key: 'careCloud',
  port: 4010,
  create: (options) => createFakeCareCloud(options),
  env: (fake, baseUrl) => ({
    CARECLOUD_BASE_URL: baseUrl,
    CARECLOUD_LOGIN: fake.credentials.login,
    CARECLOUD_PASSWORD: fake.credentials.password,
    CARECLOUD_APP_ID: fake.credentials.appId,
    CARECLOUD_TIMEZONE: fake.timezone,
  }),
  test: {
    options: { seed: 7, count: 600, rateLimits: null },
    // Pages of 100 (CareCloud's own default), which the suite was written for; the size found at run time (auto,
    // the product's default) has tests of its own (test/integration/page-size.test.ts).
    env: { CARECLOUD_RATE_LIMIT: '1000/s', CARECLOUD_SLICE_PAGES: '20', CARECLOUD_PAGE_SIZE: '100' },
  },
  demo: {
    options: { count: 3_000, rateLimits: [{ max: 10, windowMs: 1000 }] },
    // A few malformed records, as real APIs send now and then: they are rejected with a reason and kept aside.
    seed: (fake) => {
      fake.store.insertMalformed('comma-number');
      fake.store.insertMalformed('zero-date');
    },
    env: { CARECLOUD_RATE_LIMIT: '8/s', CARECLOUD_SCHEDULE: '15s' },
  },
  async measure(fake, baseUrl, count, pages) {
    const { login, password, appId } = fake.credentials;
    const answer = await fetch(`${baseUrl}/users/actions/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user_external_application_id: appId, login, password }),
    });
    const token = ((await answer.json()) as { data: { bearer_token: string } }).data.bearer_token;
    for (let i = 0; i < 200; i++) fake.store.update(fake.store.insert().voucher_id);
    const started = performance.now();
    for (let page = 0; page < pages; page++) {
      const offset = Math.floor((page / pages) * count);
      const response = await fetch(
        `${baseUrl}/vouchers?count=1000&offset=${offset}&sort_field=last_change&sort_direction=DESC`,
        {
          headers: { authorization: `Bearer ${token}` },
        },
      );
      await response.arrayBuffer();
    }
    return `CareCloud: ${((performance.now() - started) / pages).toFixed(1)} ms per page of 1000 (DESC, spread offsets)`;
  },
} satisfies SourceFake<FakeCareCloud, FakeCareCloudOptions>;
