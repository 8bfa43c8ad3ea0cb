/**
 * The HTTP endpoint of a service process (HTTP_PORT): health, readiness, Prometheus metrics, the Bull Board queue
 * dashboard and — in the scheduler role and `all` — the status page and the JSON behind it.
 *
 * Which process serves what: every process answers /healthz, /readyz, /metrics (its own counters) and /queues.
 * What is read from Postgres and Redis for everyone (the status page, /api/status, /api/history, the shared gauges
 * of /metrics) is served by schedulers only, so that a dashboard summing over processes counts it once.
 *
 * When HTTP_TOKEN is set, everything but /healthz and /readyz needs it (see auth.ts). The page's own files
 * (HTML, script, styles, uPlot) are served without it: they hold no data, and the page must load to ask for the
 * token. Nothing served holds a secret or a customer's e-mail: the JSON comes from readStatus and history.ts,
 * which never read `raw`.
 */
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { Queue } from 'bullmq';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Redis } from 'ioredis';
import { isLoopback, type Config } from '../config.ts';
import type { Db } from '../db/client.ts';
import { describeDatabaseUrl } from '../db/database-url.ts';
import type { Logger } from '../logger.ts';
import { atPackageRoot } from '../package-root.ts';
import { renderMetrics, type ServiceRole } from '../metrics/render-metrics.ts';
import { scrubSecrets } from '../secrets.ts';
import { readStatus } from '../status/read-status.ts';
import { redisUrlForDisplay } from '../../jobs/queues.ts';
import { requireToken, sessionRoutes } from './auth.ts';
import { MAX_DAYS, readHistory } from './history.ts';
import { createReadinessCheck } from './readiness.ts';

export interface OperatorServerOptions {
  config: Config;
  /** What this process is: the status page and the shared reads are served by `scheduler` and `all` only. */
  role: ServiceRole;
  db: Db;
  redis: Redis;
  /** The queues Bull Board shows: every source queue and slice queue this process knows. */
  queues: Queue[];
  logger: Logger;
  /** Port to listen on; default `config.server.port` (0 picks a free one, as tests do). */
  port?: number;
  /** The clock of /api/status and /api/history (tests freeze it). Default: the real time. */
  now?: () => Date;
}

export interface OperatorServer {
  /** `http://host:port`, the address it listens on. */
  url: string;
  close(): Promise<void>;
}

const PAGE_DIR = atPackageRoot('src', 'server', 'page');
const UPLOT_DIR = dirname(createRequire(import.meta.url).resolve('uplot/dist/uPlot.iife.min.js'));

/** Only this origin, no framing, no plug-ins: the status page needs nothing else. */
const CSP = [
  "default-src 'self'",
  "img-src 'self' data:",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/**
 * Bull Board's page sets a <base href> and styles through inline <style> elements, and asks Google Fonts for its
 * typefaces: the first two are allowed on /queues, the fonts stay refused (no request leaves for another site; the
 * board falls back to the system's fonts).
 */
const BOARD_CSP = CSP.replace("base-uri 'none'", "base-uri 'self'") + "; style-src 'self' 'unsafe-inline'";

function securityHeaders(req: Request, res: Response, next: NextFunction): void {
  res.set({
    'Content-Security-Policy': req.path === '/queues' || req.path.startsWith('/queues/') ? BOARD_CSP : CSP,
    'X-Frame-Options': 'DENY',
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'Cross-Origin-Opener-Policy': 'same-origin',
    'Cross-Origin-Resource-Policy': 'same-origin',
  });
  next();
}

const readsShared = (role: ServiceRole) => role === 'all' || role === 'scheduler';

/** `days` of /api/history: a whole number from 1 to MAX_DAYS, 7 when absent. */
export function parseDays(value: unknown): number | string {
  if (value === undefined) return 7;
  if (typeof value !== 'string' || !/^\d+$/.test(value))
    return `days must be a whole number of days (got ${JSON.stringify(value)})`;
  const days = Number(value);
  if (days < 1 || days > MAX_DAYS) return `days must be from 1 to ${MAX_DAYS} (got ${days})`;
  return days;
}

export async function createOperatorServer(options: OperatorServerOptions): Promise<OperatorServer> {
  const { config, role, db, redis, queues, logger } = options;
  const { host, token } = config.server;
  const port = options.port ?? config.server.port;
  if (port === null) throw new Error('HTTP_PORT is not set: the operator endpoint is off');
  // loadConfig refuses this already; a config built another way must not open the endpoint to the network either.
  if (!isLoopback(host) && token === null)
    throw new Error(`HTTP_HOST is not a loopback address, so HTTP_TOKEN must be set (got ${JSON.stringify(host)})`);
  const now = options.now ?? (() => new Date());
  const log = logger.child({ component: 'http' });
  const ready = createReadinessCheck({
    db,
    redis,
    databaseName: describeDatabaseUrl(config.databaseUrl.reveal()),
    redisName: redisUrlForDisplay(config.redisUrl.reveal()),
  });
  const status = () => readStatus({ db, redis, config, now: now() });

  const app = express();
  app.disable('x-powered-by');
  // Behind a reverse proxy that terminates TLS, `req.secure` (the cookie's Secure flag) follows X-Forwarded-Proto.
  app.set('trust proxy', 'loopback');
  app.use(securityHeaders);

  app.get('/healthz', (_req, res) => void res.type('text/plain').send('ok\n'));
  app.get('/readyz', async (_req, res) => {
    const result = await ready();
    res
      .status(result.ready ? 200 : 503)
      .type('text/plain')
      .send(result.ready ? 'ready\n' : `${result.problems.join('\n')}\n`);
  });

  if (readsShared(role)) {
    app.get('/', (_req, res) => void res.sendFile(join(PAGE_DIR, 'index.html')));
    app.use('/assets', express.static(PAGE_DIR, { index: false }));
    app.use('/assets/uplot', express.static(UPLOT_DIR, { index: false }));
  } else {
    app.get(
      '/',
      (_req, res) =>
        void res
          .status(404)
          .type('text/plain')
          .send(
            `This is a ${role} process: the status page is served by the scheduler (npm start -- --role scheduler).\n`,
          ),
    );
  }

  const session = sessionRoutes(token);
  app.post('/api/session', session.create);
  app.delete('/api/session', session.remove);
  app.use(requireToken(token));
  app.use('/api', (_req, res, next) => (res.set('Cache-Control', 'no-store'), next()));

  app.get('/metrics', async (_req, res) => {
    const metrics = await renderMetrics({
      role,
      queues,
      ...(readsShared(role) && { readStatus: status }),
      onError: (error) => log.warn({ err: error }, 'metrics: could not read the shared state'),
    });
    res.type(metrics.contentType).send(metrics.body);
  });

  const board = new ExpressAdapter();
  board.setBasePath('/queues');
  // Read-only: pausing, retrying and removing go through the command line, so that pause and cancel keep their meaning.
  createBullBoard({
    queues: queues.map((queue) => new BullMQAdapter(queue, { readOnlyMode: true })),
    serverAdapter: board,
    options: { uiConfig: { boardTitle: 'voucher-sync' } },
  });
  app.use('/queues', board.getRouter());

  if (readsShared(role)) {
    app.get('/api/status', async (_req, res) => void res.json(await status()));
    app.get('/api/history', async (req, res) => {
      const days = parseDays(req.query.days);
      if (typeof days === 'string') return void res.status(400).type('text/plain').send(`${days}\n`);
      res.json(await readHistory({ db, config, days, now: now() }));
    });
  } else {
    app.use(
      '/api',
      (_req, res) =>
        void res
          .status(404)
          .type('text/plain')
          .send(
            `This is a ${role} process: the status API is served by the scheduler (npm start -- --role scheduler).\n`,
          ),
    );
  }

  app.use((_req: Request, res: Response) => void res.status(404).type('text/plain').send('not found\n'));
  // Express 5 hands a rejected handler here. The message may quote a driver: scrubbed, and kept short.
  app.use((error: unknown, req: Request, res: Response, _next: NextFunction) => {
    log.error({ err: error, path: req.path }, 'request failed');
    const message = error instanceof Error ? error.message.split('\n')[0]! : String(error);
    if (!res.headersSent)
      res
        .status(500)
        .type('text/plain')
        .send(`${scrubSecrets(message)}\n`);
  });

  const server = createServer(app);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error) =>
      reject(new Error(`cannot listen on ${host}:${port} (HTTP_HOST, HTTP_PORT): ${error.message}`, { cause: error })),
    );
    server.listen(port, host, resolve);
  });
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${shownHost}:${address.port}`;
  log.info({ url, role }, 'operator endpoint listening');
  let closing: Promise<void> | undefined;
  return {
    url,
    close() {
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        // Keep-alive connections of browsers and scrapers would hold close() open until they time out.
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
