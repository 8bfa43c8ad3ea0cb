/**
 * Child process entry: one fake API (CareCloud or Cin7) in a process of its own, so that its memory and CPU
 * are measured apart from the bench driver and the workers. Driven over the IPC channel (see fake-host.ts).
 */
import { createFakeCareCloud } from '../src/fake/carecloud.ts';
import { createFakeCin7 } from '../src/fake/cin7.ts';
import type { FakeStats } from '../src/fake/fake-server.ts';
import type { FakeProcessOptions, FakeReady, FakeReply, FakeRequestMessage, FakeStatsSnapshot } from './fake-host.ts';

const options = JSON.parse(process.argv[2] ?? '{}') as FakeProcessOptions;
const send = (message: unknown) => process.send?.(message);

/** Arrival times (epoch ms) of list requests that were served, for rolling-window counts. */
let arrivals: number[] = [];

async function start(): Promise<{ ready: FakeReady; stats: FakeStats; stop(): Promise<void> }> {
  const common = {
    seed: options.seed,
    count: options.count,
    latencyMs: options.latencyMs,
    rateLimits: options.rateLimits,
  };
  if (options.source === 'carecloud') {
    const fake = createFakeCareCloud(common);
    const url = await fake.start();
    fake.store.onListRequest(() => void arrivals.push(Date.now()));
    const listed = await countCareCloud(url, fake.credentials);
    return {
      ready: {
        url,
        listed,
        env: {
          CARECLOUD_BASE_URL: url,
          CARECLOUD_LOGIN: fake.credentials.login,
          CARECLOUD_PASSWORD: fake.credentials.password,
          CARECLOUD_APP_ID: fake.credentials.appId,
          CARECLOUD_TIMEZONE: fake.timezone,
        },
      },
      stats: fake.stats,
      stop: () => fake.stop(),
    };
  }
  const fake = createFakeCin7(common);
  const url = await fake.start();
  fake.store.onListRequest(() => void arrivals.push(Date.now()));
  return {
    ready: {
      url,
      listed: fake.store.size,
      env: { CIN7_BASE_URL: url, CIN7_USERNAME: fake.credentials.username, CIN7_API_KEY: fake.credentials.apiKey },
    },
    stats: fake.stats,
    stop: () => fake.stop(),
  };
}

/** How many vouchers the API lists (service vouchers are hidden), asked the way a client would. */
async function countCareCloud(
  url: string,
  credentials: { login: string; password: string; appId: string },
): Promise<number> {
  const login = await fetch(`${url}/users/actions/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      user_external_application_id: credentials.appId,
      login: credentials.login,
      password: credentials.password,
    }),
  });
  const token = ((await login.json()) as { data: { bearer_token: string } }).data.bearer_token;
  const page = await fetch(`${url}/vouchers?count=1&offset=0`, { headers: { authorization: `Bearer ${token}` } });
  return ((await page.json()) as { data: { total_items: number } }).data.total_items;
}

function snapshot(stats: FakeStats): FakeStatsSnapshot {
  return {
    requests: stats.requests,
    byEndpoint: { ...stats.byEndpoint },
    byStatus: { ...stats.byStatus },
    rateLimited: stats.rateLimited,
    limitViolations: stats.limitViolations,
    maxInWindow: stats.maxInWindow,
  };
}

const fake = await start();
// The probe above is not part of any measurement.
fake.stats.reset();
arrivals = [];

process.on('message', (message: FakeRequestMessage) => {
  const reply = (result: unknown) => send({ id: message.id, result } satisfies FakeReply);
  switch (message.command) {
    case 'stats':
      return reply(snapshot(fake.stats));
    case 'reset':
      fake.stats.reset();
      arrivals = [];
      return reply(null);
    case 'arrivals':
      return reply(arrivals);
    case 'stop':
      void fake.stop().then(() => {
        reply(null);
        process.disconnect();
      });
      return;
  }
});
send({ ready: fake.ready });
