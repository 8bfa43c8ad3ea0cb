import { afterEach, describe, expect, it } from 'vitest';
import { Secret } from '../../src/config.ts';
import type { Cin7Config } from '../../src/sources/cin7/config.ts';
import { FatalSourceError, RetriableSourceError } from '../../src/errors.ts';
import { createLogger } from '../../src/logger.ts';
import { createCin7Client } from '../../src/sources/cin7/client.ts';
import {
  captureLogs,
  startLocalServer,
  testHttpConfig,
  type Answer,
  type LocalServer,
  type SeenRequest,
} from '../http/local-server.ts';
import { rejection } from '../helpers/rejection.ts';

const API_KEY = 'k3y-0f-the-connection';
const http = testHttpConfig();

describe('createCin7Client', () => {
  let server: LocalServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  async function setup(handler: (request: SeenRequest) => Answer) {
    server = await startLocalServer(handler);
    const logs = captureLogs();
    const config = {
      baseUrl: `${server.url}/api`,
      username: 'AcmeNZ',
      apiKey: new Secret(API_KEY),
      timezone: 'UTC',
    } as Cin7Config;
    const client = createCin7Client(config, { http, logger: createLogger('debug', logs), backoffBaseMs: 10 });
    return { client, logs, server };
  }

  it('sends Basic auth on every request and passes the query through', async () => {
    const { client, server } = await setup(() => ({ json: [{ code: 'A1' }, { code: 'A2' }] }));
    const where = "CreatedDate>='2024-01-01T00:00:00Z'";
    const page = await client.listVouchers({
      where,
      order: 'CreatedDate ASC',
      page: 2,
      rows: 250,
      fields: ['code', 'createdDate'],
    });
    const found = await client.findByCode('A 1');

    expect(page).toEqual([{ code: 'A1' }, { code: 'A2' }]);
    expect(found).toHaveLength(2);
    const expected = `Basic ${Buffer.from(`AcmeNZ:${API_KEY}`).toString('base64')}`;
    for (const request of server.requests) expect(request.headers.authorization).toBe(expected);
    const first = new URL(server.requests[0]!.url, server.url);
    expect(first.pathname).toBe('/api/v1/Voucher');
    expect(Object.fromEntries(first.searchParams)).toEqual({
      page: '2',
      rows: '250',
      where,
      order: 'CreatedDate ASC',
      fields: 'code,createdDate',
    });
    expect(new URL(server.requests[1]!.url, server.url).searchParams.get('code')).toBe('A 1');
  });

  it.each([
    [401, 'Cin7 rejected the API username or key'],
    [403, 'lacks read permission for vouchers'],
  ])('reports %i as FatalSourceError without retrying or leaking the key', async (status, message) => {
    const { client, logs, server } = await setup(() => ({
      status,
      json: { Message: 'Authorization has been denied for this request.' },
    }));
    const error = await rejection(client.listVouchers({ page: 1, rows: 10 }));
    expect(error).toBeInstanceOf(FatalSourceError);
    expect((error as FatalSourceError).status).toBe(status);
    expect((error as Error).message).toContain(message);
    expect(server.requests).toHaveLength(1);
    const encoded = Buffer.from(`AcmeNZ:${API_KEY}`).toString('base64');
    for (const text of [(error as Error).message, logs.text()]) {
      expect(text).not.toContain(API_KEY);
      expect(text).not.toContain(encoded);
    }
  });

  it('refuses a body that is not an array', async () => {
    const { client } = await setup(() => ({ json: { Message: 'An error has occurred.' } }));
    const error = await rejection(client.listVouchers({ page: 1, rows: 10 }));
    expect(error).toBeInstanceOf(RetriableSourceError);
    expect((error as Error).message).toContain('not an array');
  });
});
