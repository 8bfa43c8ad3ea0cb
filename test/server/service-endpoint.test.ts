/**
 * The endpoint as `npm start` runs it: on with HTTP_PORT, serving what the process's role serves, gone when the
 * service stops; off without HTTP_PORT.
 */
import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startService, type Service } from '../../jobs/service.ts';
import { loadConfig } from '../../src/config.ts';
import { createHarness, type Harness } from '../helpers/sync-harness.ts';

let h: Harness | undefined;
let service: Service | undefined;

afterEach(async () => {
  await service?.stop();
  service = undefined;
  await h?.close();
  h = undefined;
});

/** A port nothing listens on right now. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('the service and its endpoint', () => {
  it('a scheduler serves the status page on HTTP_PORT and stops serving when it stops', async () => {
    h = await createHarness();
    const port = await freePort();
    const config = loadConfig({ ...h.env, HTTP_PORT: String(port) });
    service = await startService(config, h.logger, { workers: false });
    expect(service.httpUrl).toBe(`http://127.0.0.1:${port}`);
    expect((await fetch(`${service.httpUrl}/healthz`)).status).toBe(200);
    const status = await fetch(`${service.httpUrl}/api/status`);
    expect(status.status).toBe(200);
    const report = (await status.json()) as { sources: { source: string }[] };
    expect(report.sources.map((s) => s.source)).toEqual(['carecloud', 'cin7']);
    // The scheduler shows the slice queues on the board though it runs no slice worker.
    const board = await fetch(`${service.httpUrl}/queues/api/queues`);
    expect(board.status).toBe(200);
    const names = ((await board.json()) as { queues: { name: string }[] }).queues.map((q) => q.name).sort();
    expect(names).toEqual(['carecloud', 'carecloud-slices', 'cin7', 'cin7-slices']);
    const url = service.httpUrl!;
    await service.stop();
    service = undefined;
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
  });

  it('a worker keeps the status page to the scheduler', async () => {
    h = await createHarness();
    const config = loadConfig({ ...h.env, HTTP_PORT: String(await freePort()) });
    service = await startService(config, h.logger, { schedulers: false });
    expect((await fetch(`${service.httpUrl}/`)).status).toBe(404);
    expect((await fetch(`${service.httpUrl}/metrics`)).status).toBe(200);
  });

  it('npm run sync opens no endpoint, so that it can run beside the service with the same .env', async () => {
    h = await createHarness();
    const config = loadConfig({ ...h.env, HTTP_PORT: String(await freePort()) });
    service = await startService(config, h.logger, { schedulers: false, role: 'sync' });
    expect(service.httpUrl).toBeNull();
  });

  it('has no endpoint without HTTP_PORT', async () => {
    h = await createHarness();
    service = await startService(h.config, h.logger, { schedulers: false });
    expect(service.httpUrl).toBeNull();
  });

  it('does not start when the port is taken, and says which setting to change', async () => {
    h = await createHarness();
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = taken.address() as { port: number };
      const config = loadConfig({ ...h.env, HTTP_PORT: String(port) });
      await expect(startService(config, h.logger, { schedulers: false })).rejects.toThrow(
        `cannot listen on 127.0.0.1:${port} (HTTP_HOST, HTTP_PORT)`,
      );
    } finally {
      await new Promise<void>((resolve) => taken.close(() => resolve()));
    }
  });
});
