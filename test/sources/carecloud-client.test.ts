import { afterEach, describe, expect, it } from 'vitest';
import { Secret } from '../../src/config.ts';
import type { CareCloudConfig } from '../../src/sources/carecloud/config.ts';
import { FatalSourceError, RetriableSourceError } from '../../src/errors.ts';
import { createLogger } from '../../src/logger.ts';
import { createCareCloudClient } from '../../src/sources/carecloud/client.ts';
import type { Clock } from '../../src/types.ts';
import {
  captureLogs,
  startLocalServer,
  testHttpConfig,
  type Answer,
  type LocalServer,
  type SeenRequest,
} from '../http/local-server.ts';
import { rejection } from '../helpers/rejection.ts';

const PASSWORD = 'pa55-w0rd-not-for-logs';
const APP_ID = 'app-9f8e7d6c5b4a';
const http = testHttpConfig();
const PREFIX = '/webservice/rest-api/enterprise-interface/v1.0';

/** A CareCloud that issues tokens `tok-1`, `tok-2`… and accepts only the latest, unless told otherwise. */
function fakeCareCloud(
  options: {
    loginAnswer?: () => Answer;
    validTo?: string;
    acceptToken?: (token: string, latest: string) => boolean;
  } = {},
) {
  const state = { issued: 0, logins: [] as SeenRequest[], latest: '' };
  const handle = (request: SeenRequest): Answer => {
    const path = request.url.replace(PREFIX, '');
    if (path === '/users/actions/login') {
      state.logins.push(request);
      if (options.loginAnswer) return options.loginAnswer();
      state.latest = `tok-${++state.issued}-secretish`;
      return {
        json: { data: { bearer_token: state.latest, valid_to: options.validTo ?? '2099-01-01 00:00:00', user: {} } },
      };
    }
    const token = request.headers.authorization?.replace('Bearer ', '') ?? '';
    const accept = options.acceptToken ?? ((t, latest) => t === latest);
    if (!accept(token, state.latest)) return { status: 401, json: { error: { title: 'Unauthorized' } } };
    if (path.startsWith('/vouchers/missing')) return { status: 404, json: { error: { title: 'Not found' } } };
    if (path.startsWith('/vouchers/'))
      return { json: { data: { voucher_id: path.split('/')[2]?.split('?')[0], customer_id: 'c1' } } };
    return { json: { data: { vouchers: [{ voucher_id: 'v1' }, { voucher_id: 'v2' }], total_items: 42 } } };
  };
  return { state, handle };
}

describe('createCareCloudClient', () => {
  let server: LocalServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  async function setup(fake: ReturnType<typeof fakeCareCloud>, clock?: Clock) {
    server = await startLocalServer((request) => fake.handle(request));
    const logs = captureLogs();
    const config = {
      baseUrl: `${server.url}${PREFIX}`,
      login: 'sync-user',
      password: new Secret(PASSWORD),
      appId: new Secret(APP_ID),
      timezone: 'Europe/Prague',
    } as CareCloudConfig;
    const client = createCareCloudClient(config, {
      http,
      logger: createLogger('debug', logs),
      clock,
      backoffBaseMs: 10,
    });
    return { client, logs, server };
  }

  it('logs in once for many concurrent calls and sends the token and language on each', async () => {
    const fake = fakeCareCloud();
    const { client, server } = await setup(fake);
    const results = await Promise.all([
      client.listVouchers({ count: 2, offset: 0, sort_field: 'last_change', sort_direction: 'DESC' }),
      client.listVouchers({ count: 2, offset: 2 }),
      client.getVoucher('abc'),
      client.listCustomerVouchers('c 1', { count: 10, offset: 0, code: 'X1', is_valid: true, store_id: undefined }),
    ]);
    await client.listVouchers({ count: 2, offset: 4 });

    expect(fake.state.logins).toHaveLength(1);
    expect(JSON.parse(fake.state.logins[0]!.body)).toEqual({
      user_external_application_id: APP_ID,
      login: 'sync-user',
      password: PASSWORD,
    });
    expect(fake.state.logins[0]!.headers.authorization).toBeUndefined();
    const calls = server.requests.filter((r) => !r.url.includes('login'));
    expect(calls).toHaveLength(5);
    for (const call of calls) {
      expect(call.headers.authorization).toBe('Bearer tok-1-secretish');
      expect(call.headers['accept-language']).toBe('en-gb');
    }
    expect(results[0]).toEqual({ vouchers: [{ voucher_id: 'v1' }, { voucher_id: 'v2' }], totalItems: 42 });
    expect(results[2]).toEqual({ voucher_id: 'abc', customer_id: 'c1' });
    expect(calls.map((c) => c.url)).toContain(
      `${PREFIX}/vouchers?count=2&offset=0&sort_field=last_change&sort_direction=DESC`,
    );
    expect(calls.map((c) => c.url)).toContain(
      `${PREFIX}/customers/c%201/vouchers?count=10&offset=0&code=X1&is_valid=true`,
    );
  });

  it('logs in again once when the token is refused (401), and the call succeeds', async () => {
    const fake = fakeCareCloud();
    const { client } = await setup(fake);
    await client.listVouchers({ count: 1, offset: 0 });
    fake.state.latest = 'revoked-on-the-server';
    const page = await client.listVouchers({ count: 1, offset: 1 });
    expect(page.vouchers).toHaveLength(2);
    expect(fake.state.logins).toHaveLength(2);
  });

  it('renews the token shortly before valid_to, read in the project time zone', async () => {
    // 12:00 in Prague (winter, UTC+1) is 11:00 UTC.
    const fake = fakeCareCloud({ validTo: '2030-01-10 12:00:00' });
    let now = new Date('2030-01-10T10:00:00Z');
    const { client } = await setup(fake, { now: () => now });
    await client.listVouchers({ count: 1, offset: 0 });
    now = new Date('2030-01-10T10:50:00Z');
    await client.listVouchers({ count: 1, offset: 0 });
    expect(fake.state.logins).toHaveLength(1);
    now = new Date('2030-01-10T10:59:30Z');
    await client.listVouchers({ count: 1, offset: 0 });
    expect(fake.state.logins).toHaveLength(2);
  });

  it('gives up with FatalSourceError when a fresh token is refused too', async () => {
    const fake = fakeCareCloud({ acceptToken: () => false });
    const { client, server } = await setup(fake);
    const error = await rejection(client.listVouchers({ count: 1, offset: 0 }));
    expect(error).toBeInstanceOf(FatalSourceError);
    expect((error as FatalSourceError).status).toBe(401);
    expect((error as Error).message).toContain('CareCloud rejected a freshly issued token');
    expect(fake.state.logins).toHaveLength(2);
    expect(server.requests.filter((r) => !r.url.includes('login'))).toHaveLength(2);
  });

  it.each([401, 403])(
    'reports rejected credentials (%i) as FatalSourceError, without retrying or leaking them',
    async (status) => {
      const fake = fakeCareCloud({
        loginAnswer: () => ({
          status,
          json: { error: { title: 'Invalid login or password', detail: `login ${PASSWORD}` } },
        }),
      });
      const { client, logs } = await setup(fake);
      const error = await rejection(client.listVouchers({ count: 1, offset: 0 }));
      expect(error).toBeInstanceOf(FatalSourceError);
      expect((error as Error).message).toContain('CareCloud rejected the login credentials');
      expect(fake.state.logins).toHaveLength(1);
      for (const text of [(error as Error).message, logs.text()]) {
        expect(text).not.toContain(PASSWORD);
        expect(text).not.toContain(APP_ID);
      }
    },
  );

  it('never writes the token, password or application id to the logs', async () => {
    const fake = fakeCareCloud();
    const { client, logs } = await setup(fake);
    await client.listVouchers({ count: 1, offset: 0 });
    fake.state.latest = 'revoked';
    await client.listVouchers({ count: 1, offset: 0 });
    expect(await client.getVoucher('missing')).toBeNull();
    expect(logs.lines.length).toBeGreaterThan(0);
    for (const secret of [PASSWORD, APP_ID, 'tok-1-secretish', 'tok-2-secretish'])
      expect(logs.text()).not.toContain(secret);
  });

  it('refuses a page whose data.vouchers is not an array', async () => {
    const fake = fakeCareCloud();
    const handle = fake.handle;
    fake.handle = (request) =>
      request.url.includes('login') ? handle(request) : { json: { data: { vouchers: { v1: {} }, total_items: 1 } } };
    const { client } = await setup(fake);
    const error = await rejection(client.listVouchers({ count: 1, offset: 0 }));
    expect(error).toBeInstanceOf(RetriableSourceError);
    expect((error as Error).message).toContain('data.vouchers');
  });
});
