import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { HttpConfig } from '../../src/config.ts';

export interface SeenRequest {
  method: string;
  /** Path and query, as received. */
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** What the handler answers: a JSON body (object) or raw text, with optional headers. */
export interface Answer {
  status?: number;
  headers?: Record<string, string>;
  json?: unknown;
  text?: string;
}

export interface LocalServer {
  url: string;
  requests: SeenRequest[];
  close(): Promise<void>;
}

/**
 * A tiny HTTP server on a free loopback port. The handler returns an Answer, or writes to the raw response itself
 * (for broken answers) and returns undefined.
 */
export async function startLocalServer(
  handler: (request: SeenRequest, response: ServerResponse) => Answer | undefined | Promise<Answer | undefined>,
): Promise<LocalServer> {
  const requests: SeenRequest[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const seen = {
        method: req.method ?? 'GET',
        url: req.url ?? '/',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      requests.push(seen);
      void Promise.resolve(handler(seen, res)).then((answer) => {
        if (!answer) return;
        const body = answer.json !== undefined ? JSON.stringify(answer.json) : (answer.text ?? '');
        const type = answer.json !== undefined ? 'application/json' : 'text/plain';
        res.writeHead(answer.status ?? 200, { 'content-type': type, ...answer.headers });
        res.end(body);
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A pino destination that keeps every log line, for asserting what was (not) logged. */
export function captureLogs(): { lines: string[]; write(line: string): void; text(): string } {
  const lines: string[] = [];
  return { lines, write: (line: string) => void lines.push(line), text: () => lines.join('') };
}

/** HTTP settings for client tests against a local server: short timeouts, a few quick retries. */
export function testHttpConfig(overrides: Partial<HttpConfig> = {}): HttpConfig {
  return {
    connectTimeoutMs: 2000,
    readTimeoutMs: 2000,
    retries: 2,
    maxInlineWaitMs: 5000,
    retryBackoffMs: 1000,
    requestTimeoutMs: 60_000,
    maxResponseBytes: 16 * 1024 ** 2,
    ...overrides,
  };
}
