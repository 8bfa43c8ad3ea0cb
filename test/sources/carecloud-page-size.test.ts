/**
 * How the CareCloud client reads a 400 about `count` (CareCloud documents no maximum for it): as a
 * PageSizeRefusedError with the maximum its message names, and with CARECLOUD_PAGE_SIZE set to a number, a message
 * that says which setting to change. Any other 400 stays the bad request it was.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { FatalSourceError, InvalidParamsError, PageSizeRefusedError } from '../../src/errors.ts';
import { createFakeCareCloud, type FakeCareCloud } from '../../src/fake/carecloud.ts';
import { createLogger } from '../../src/logger.ts';
import { createCareCloudClient } from '../../src/sources/carecloud/client.ts';
import type { CareCloudConfig } from '../../src/sources/carecloud/config.ts';
import { careCloudInvalidParams, maximumNamed } from '../../src/sources/carecloud/error-details.ts';
import { testHttpConfig } from '../http/local-server.ts';

let fake: FakeCareCloud;
beforeAll(async () => {
  fake = createFakeCareCloud({ count: 50, rateLimits: null, maxCount: 700 });
  await fake.start();
});
afterAll(() => fake.stop());

function clientWith(pageSize: string) {
  const config = loadConfig({
    CARECLOUD_BASE_URL: fake.url,
    CARECLOUD_LOGIN: fake.credentials.login,
    CARECLOUD_PASSWORD: fake.credentials.password,
    CARECLOUD_APP_ID: fake.credentials.appId,
    CARECLOUD_TIMEZONE: fake.timezone,
    CARECLOUD_PAGE_SIZE: pageSize,
  }).sources.carecloud as CareCloudConfig;
  return createCareCloudClient(config, { http: testHttpConfig(), logger: createLogger('silent') });
}

const errorOf = (promise: Promise<unknown>) =>
  promise.then(
    () => null,
    (error: unknown) => error,
  );

describe('a CareCloud 400 about count', () => {
  it('is a PageSizeRefusedError carrying the size refused and the maximum the message names', async () => {
    const client = clientWith('auto');
    const error = await errorOf(client.listVouchers({ count: 1000, offset: 0 }));
    expect(error).toBeInstanceOf(PageSizeRefusedError);
    expect(error).toMatchObject({ size: 1000, hint: 700, status: 400 });
    expect((error as Error).message).toContain('count must be from 1 to 700');
    const page = await client.listVouchers({ count: 700, offset: 0 });
    expect(page.vouchers.length).toBe(page.totalItems);
    const customer = fake.store.all()[0]!.customer_id;
    expect(await errorOf(client.listCustomerVouchers(customer, { count: 701, offset: 0 }))).toMatchObject({
      size: 701,
      hint: 700,
    });
  });

  it('names the setting to change, and the value to try, when CARECLOUD_PAGE_SIZE is a number', async () => {
    const error = await errorOf(clientWith('800').listVouchers({ count: 800, offset: 0 }));
    expect(error).toBeInstanceOf(PageSizeRefusedError);
    expect((error as Error).message).toContain(
      'CARECLOUD_PAGE_SIZE=800 asks for more records a page than CareCloud accepts: set it to 700, or to auto',
    );
  });

  it('leaves a 400 about another parameter an ordinary bad request', async () => {
    const error = await errorOf(clientWith('auto').listVouchers({ count: 10, offset: -1 }));
    expect(error).toBeInstanceOf(InvalidParamsError);
    expect(error).not.toBeInstanceOf(PageSizeRefusedError);
    expect(error).toBeInstanceOf(FatalSourceError);
    expect((error as InvalidParamsError).params.map((p) => p.name)).toEqual(['offset']);
  });
});

describe('reading invalid_params', () => {
  it('takes a name given as a string or as a list of strings, and skips what names nothing', () => {
    const read = (params: unknown) => careCloudInvalidParams({ error_data: { invalid_params: params } });
    expect(read([{ name: 'count', reason: 'not_allowed_value', message: 'too many' }])).toEqual([
      { name: 'count', message: 'too many' },
    ]);
    expect(read([{ name: ['offset', 'count'] }])).toEqual([
      { name: 'offset', message: '' },
      { name: 'count', message: '' },
    ]);
    expect(read([null, 7, { name: 42 }, { name: { count: 1 } }, { name: [null, 'count'] }])).toEqual([
      { name: 'count', message: '' },
    ]);
    expect(read('count')).toEqual([]);
    expect(careCloudInvalidParams({})).toEqual([]);
  });

  it('finds the maximum a message names below the size refused, or none', () => {
    expect(maximumNamed('count must be from 1 to 700', 1000)).toBe(700);
    expect(maximumNamed('count 1000 exceeds the maximum of 1,000', 1500)).toBe(1000);
    expect(maximumNamed('count 1000 exceeds the maximum of 250', 1000)).toBe(250);
    expect(maximumNamed('count must be from 1 to 5000', 1000)).toBeUndefined();
    expect(maximumNamed('not allowed', 1000)).toBeUndefined();
    expect(maximumNamed('count must be at least 1', 1000)).toBeUndefined();
  });
});
