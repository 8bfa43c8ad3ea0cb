/**
 * A hostile server for tests: a reverse proxy in front of one of the realistic fakes (src/fake/) that can be
 * switched, at any time, into a misbehaviour the real APIs might show and our fakes never do — a lying total, an
 * ignored parameter, a redirect, a slow drip, a gzip bomb, a body in another charset, poisoned records, an echo
 * of the request. The fakes stay friendly for the demo; everything hostile lives here, in test code only.
 *
 * A behaviour sees each request and decides: forward it as it is, forward it changed (its query rewritten, the
 * answer's JSON edited), or answer by itself on the raw response. Behaviours are plain functions, so a test can
 * write one inline; the common ones are in ./behaviours.ts.
 */
import {
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** One request as the proxy received it. */
export interface HostileRequest {
  method: string;
  /** Path without the query. */
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** What the upstream fake answered. */
export interface Upstream {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json: unknown;
}

export interface BehaviourContext {
  request: HostileRequest;
  /** Sends the request (or a changed copy of it) to the realistic fake and returns its answer, unsent. */
  forward(change?: {
    path?: string;
    query?: URLSearchParams;
    body?: Buffer;
    headers?: IncomingHttpHeaders;
  }): Promise<Upstream>;
  /** The raw response, for answers a well-behaved server would never send. */
  response: ServerResponse;
  /** The proxy's own origin, `http://127.0.0.1:<port>`. */
  origin: string;
}

/**
 * Handles one request. Return an Upstream (possibly edited) to have it sent as it is, or undefined once the
 * behaviour has written the response itself.
 */
export type Behaviour = (context: BehaviourContext) => Promise<Upstream | undefined> | Upstream | undefined;

/** Forwards everything unchanged. */
export const passThrough: Behaviour = ({ forward }) => forward();

export interface SeenRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
}

export interface HostileServer {
  /** The base URL to configure the service with: the upstream's base URL, on the proxy's origin. */
  readonly baseUrl: string;
  readonly origin: string;
  /** Every request received, in order. */
  readonly requests: SeenRequest[];
  /** Switches behaviour; null goes back to forwarding unchanged. */
  set(behaviour: Behaviour | null): void;
  stop(): Promise<void>;
}

/** Sends `upstream` to `response` as it is (its content-length recomputed). */
export function send(response: ServerResponse, upstream: Upstream): void {
  const headers = { ...upstream.headers };
  delete headers['content-length'];
  delete headers['transfer-encoding'];
  delete headers.connection;
  delete headers['keep-alive'];
  response.writeHead(upstream.status, { ...headers, 'content-length': String(upstream.body.length) });
  response.end(upstream.body);
}

/** The same answer with its JSON body replaced. */
export function withJson(upstream: Upstream, json: unknown): Upstream {
  const body = Buffer.from(JSON.stringify(json));
  return {
    ...upstream,
    body,
    json,
    headers: { ...upstream.headers, 'content-type': 'application/json; charset=utf-8' },
  };
}

function parse(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
}

/**
 * Starts a proxy in front of `upstreamBaseUrl` (a fake's base URL, e.g. `http://127.0.0.1:4000/api`). The proxy
 * serves the same paths on its own port.
 */
export async function startHostileServer(
  upstreamBaseUrl: string,
  initial: Behaviour | null = null,
): Promise<HostileServer> {
  const upstream = new URL(upstreamBaseUrl);
  let behaviour: Behaviour = initial ?? passThrough;
  const requests: SeenRequest[] = [];
  const sockets = new Set<Socket>();

  const forwardOf =
    (request: HostileRequest) =>
    (change: Parameters<BehaviourContext['forward']>[0] = {}): Promise<Upstream> =>
      new Promise((resolve, reject) => {
        const query = (change.query ?? request.query).toString();
        const body = change.body ?? request.body;
        const headers = {
          ...(change.headers ?? request.headers),
          host: upstream.host,
          'content-length': String(body.length),
        };
        delete headers['accept-encoding']; // the proxy edits bodies: keep them plain from the fake
        const sent = httpRequest(
          {
            host: upstream.hostname,
            port: upstream.port,
            method: request.method,
            path: `${change.path ?? request.path}${query ? `?${query}` : ''}`,
            headers,
          },
          (answer) => {
            const chunks: Buffer[] = [];
            answer.on('data', (chunk: Buffer) => chunks.push(chunk));
            answer.on('end', () => {
              const raw = Buffer.concat(chunks);
              resolve({ status: answer.statusCode ?? 502, headers: answer.headers, body: raw, json: parse(raw) });
            });
            answer.on('error', reject);
          },
        );
        sent.on('error', reject);
        sent.end(body);
      });

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://proxy');
      const request: HostileRequest = {
        method: req.method ?? 'GET',
        path: url.pathname,
        query: url.searchParams,
        headers: req.headers,
        body: Buffer.concat(chunks),
      };
      requests.push({
        method: request.method,
        path: request.path,
        query: new URLSearchParams(url.searchParams),
        headers: req.headers,
        body: request.body.toString('utf8'),
        at: Date.now(),
      });
      void (async () => {
        try {
          const answer = await behaviour({ request, forward: forwardOf(request), response: res, origin });
          if (answer && !res.headersSent) send(res, answer);
        } catch (error) {
          if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
          res.end(`hostile proxy: ${String(error)}`);
        }
      })();
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    baseUrl: `${origin}${upstream.pathname.replace(/\/+$/, '')}`,
    origin,
    requests,
    set(next) {
      behaviour = next ?? passThrough;
    },
    async stop() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
