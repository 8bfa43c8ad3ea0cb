/**
 * A tiny fake API for the test-only third source: `GET /items?page=N&size=M` (1-based pages, ordered by id) answers
 * a JSON array of vouchers, for a request bearing `x-token`. Nothing else.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface TinyVoucher {
  id: string;
  code: string;
  amount: number;
  created: string;
}

export interface TinyApiOptions {
  /** Vouchers served. @default 20 */
  count?: number;
  /** Changes the codes, so that two seeds serve different data. @default 1 */
  seed?: number;
}

export interface TinyApi {
  readonly token: string;
  readonly vouchers: TinyVoucher[];
  readonly requests: number;
  start(port?: number): Promise<string>;
  stop(): Promise<void>;
}

export function createTinyApi(options: TinyApiOptions = {}): TinyApi {
  const token = 'tiny-t0ken';
  const seed = options.seed ?? 1;
  const vouchers: TinyVoucher[] = Array.from({ length: options.count ?? 20 }, (_, i) => ({
    id: `t${String(i + 1).padStart(4, '0')}`,
    code: `TINY-${seed}-${i + 1}`,
    amount: (i % 7) * 5 + 10,
    created: new Date(Date.UTC(2026, 0, 1) + i * 60_000).toISOString(),
  }));
  let requests = 0;
  let server: Server | null = null;
  const handler = createServer((request, response) => {
    requests++;
    const url = new URL(request.url ?? '/', 'http://localhost');
    if (request.headers['x-token'] !== token) return void response.writeHead(401).end('{"message":"bad token"}');
    if (url.pathname !== '/items') return void response.writeHead(404).end('{"message":"no such path"}');
    const page = Number(url.searchParams.get('page') ?? 1);
    const size = Number(url.searchParams.get('size') ?? 10);
    response
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify(vouchers.slice((page - 1) * size, page * size)));
  });
  return {
    token,
    vouchers,
    get requests() {
      return requests;
    },
    async start(port = 0) {
      server = handler;
      await new Promise<void>((resolve) => handler.listen(port, '127.0.0.1', resolve));
      return `http://127.0.0.1:${(handler.address() as AddressInfo).port}`;
    },
    async stop() {
      if (!server) return;
      server = null;
      handler.closeAllConnections();
      await new Promise<void>((resolve) => handler.close(() => resolve()));
    },
  };
}
