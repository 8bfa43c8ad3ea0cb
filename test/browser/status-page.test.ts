/**
 * The status page in a real browser (Debian's chromium through playwright-core): real syncs of both fakes on top of
 * three days of ledger history, the page opened with the token, both sources shown, and every chart's drawn points
 * checked against the ledger through the DOM. Without the token the page's data is refused. Saves screenshots in
 * test-results/, and with UPDATE_SCREENSHOT=1 the README's picture, docs/status-page.png.
 *
 * Without /usr/bin/chromium the test is skipped, with a warning; under CI=true it fails instead.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOperatorServer, type OperatorServer } from '../../src/server/operator-server.ts';
import { startHeartbeat, type HeartbeatHandle } from '../../jobs/heartbeat.ts';
import { createHarness, type Harness } from '../helpers/sync-harness.ts';

const CHROMIUM = '/usr/bin/chromium';
const TOKEN = 'status-page-token-0123456789abcdef';
const haveChromium = existsSync(CHROMIUM);
const RESULTS = fileURLToPath(new URL('../../test-results/', import.meta.url));
const DOCS_SHOT = fileURLToPath(new URL('../../docs/status-page.png', import.meta.url));

if (!haveChromium && process.env.CI === 'true')
  throw new Error(`${CHROMIUM} is missing and CI=true: install Debian's chromium (apt-get install chromium)`);
if (!haveChromium) console.warn(`status-page.test.ts skipped: ${CHROMIUM} is missing (apt-get install chromium)`);

interface Series {
  label: string;
  source: string;
  x: number[];
  y: number[];
}

let h: Harness;
let server: OperatorServer;
let queues: Queue[];
let browser: Browser;
let heartbeat: HeartbeatHandle | undefined;

describe.skipIf(!haveChromium)('the status page', () => {
  beforeAll(async () => {
    h = await createHarness({ env: { HTTP_TOKEN: TOKEN, CIN7_RATE_LIMIT: '3/s,60/min', CIN7_DAILY_BUDGET: '5000' } });
    // Three days of half-hourly incremental runs before the real ones, with a failure now and then: what an
    // operator's page looks like after a while. Oldest first, as the ledger numbers them.
    await h.db.$executeRaw`
      INSERT INTO sync_runs (source, stream, mode, status, started_at, finished_at, heartbeat_at, pages, fetched,
                             inserted, updated, api_calls, error)
      SELECT s.source, 'vouchers', 'incremental', CASE WHEN i % 37 = 5 THEN 'failed' ELSE 'succeeded' END,
             now() - make_interval(mins => 30 * i + 5 + 10 * s.extra),
             now() - make_interval(mins => 30 * i + 5 + 10 * s.extra) + make_interval(secs => 20 + (i * (7 + s.extra)) % 50),
             now() - make_interval(mins => 30 * i + 5 + 10 * s.extra) + make_interval(secs => 20 + (i * (7 + s.extra)) % 50),
             1 + i % 3, 10 + (i * (13 + 4 * s.extra)) % 90, i % 5, (i * 13) % 90, 1 + i % 3 + s.extra,
             CASE WHEN i % 37 = 5 THEN 'the server answered 503 Service Unavailable' END
        FROM generate_series(1, 144) i
       CROSS JOIN (VALUES ('carecloud', 1), ('cin7', 0)) AS s(source, extra)
       ORDER BY i DESC`;
    for (let i = 0; i < 2; i++) {
      await h.sync('carecloud');
      await h.sync('cin7');
    }
    // A service process that says it is alive, as `npm start` does: the page then says the service is up.
    heartbeat = await startHeartbeat(h.redis, h.prefix, { role: 'all', sources: ['carecloud', 'cin7'] });
    queues = ['carecloud', 'cin7', 'carecloud-slices', 'cin7-slices'].map(
      (name) => new Queue(name, { connection: h.redis, prefix: h.prefix }),
    );
    server = await createOperatorServer({
      config: h.config,
      role: 'all',
      db: h.db,
      redis: h.redis,
      queues,
      logger: h.logger,
      port: 0,
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  });

  afterAll(async () => {
    await browser?.close();
    await heartbeat?.stop();
    await server?.close();
    await Promise.all((queues ?? []).map((q) => q.close()));
    await h?.close();
  });

  async function openPage(): Promise<{ page: Page; problems: string[] }> {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const problems: string[] = [];
    // A script error or an asset refused by the CSP shows up here.
    page.on('pageerror', (error) => problems.push(error.message));
    // The page's first reads, before it has the token, are refused: that is what makes it ask.
    page.on('console', (message) => {
      if (message.type() === 'error' && !/status of 401/.test(message.text())) problems.push(message.text());
    });
    await page.goto(`${server.url}/`);
    return { page, problems };
  }

  it('refuses the data without the token, and asks for it', async () => {
    const { page } = await openPage();
    await page.locator('#login').waitFor({ state: 'visible' });
    expect(await page.locator('#content').isHidden()).toBe(true);
    const answers = await page.evaluate(async () =>
      Promise.all(['/api/status', '/api/history', '/metrics'].map(async (path) => (await fetch(path)).status)),
    );
    expect(answers).toEqual([401, 401, 401]);
    await page.fill('#token', 'a-wrong-token-of-enough-length');
    await page.click('#login button[type=submit]');
    await expect.poll(() => page.locator('#login-error').textContent()).toBe('That token was refused.');
    expect(await page.locator('#content').isHidden()).toBe(true);
    await page.context().close();
  });

  it('shows both sources and charts whose points are the runs in the ledger', async () => {
    const { page, problems } = await openPage();
    await page.fill('#token', TOKEN);
    await page.click('#login button[type=submit]');
    await page.locator('body[data-status-loaded][data-history-loaded]').waitFor();
    expect(await page.locator('#service').textContent()).toMatch(/^service up: all /);
    for (const source of ['carecloud', 'cin7']) {
      const card = page.locator(`article.source[data-source="${source}"]`);
      await expect.poll(() => card.getAttribute('data-state')).toMatch(/^(idle|failing)$/);
      expect(await card.locator('dd').first().textContent()).toMatch(/ago\)$/);
    }

    const points = async (id: string): Promise<Series[]> =>
      JSON.parse((await page.locator(`#${id}`).getAttribute('data-points'))!) as Series[];
    const bySource = (series: Series[], source: string, label = source) =>
      series.find((s) => s.source === source && s.label === label)!;
    const seconds = (d: Date) => d.getTime() / 1000;

    for (const source of ['carecloud', 'cin7']) {
      const runs = await h.db.syncRun.findMany({ where: { source }, orderBy: { startedAt: 'asc' } });
      expect(runs.length).toBe(146);
      const records = bySource(await points('chart-records'), source);
      expect(records.x).toEqual(runs.map((r) => seconds(r.startedAt)));
      expect(records.y).toEqual(runs.map((r) => r.fetched));
      const durations = bySource(await points('chart-duration'), source);
      expect(durations.y).toEqual(runs.map((r) => (r.finishedAt!.getTime() - r.startedAt.getTime()) / 1000));

      // Each success's freshness as it ended: since the success before it began.
      const successes = runs.filter((r) => r.status === 'succeeded' && r.mode === 'incremental');
      const freshness = bySource(await points('chart-freshness'), source);
      expect(freshness.x).toEqual(successes.slice(1).map((r) => seconds(r.finishedAt!)));
      expect(freshness.y).toEqual(
        successes.slice(1).map((r, i) => (r.finishedAt!.getTime() - successes[i]!.startedAt.getTime()) / 1000),
      );

      // Every request of the ledger is in one hour or another, and the last hour's 24 h total is the last day's.
      const requests = await points(`chart-requests-${source}`);
      const perHour = bySource(requests, source, 'per hour');
      const total = runs.reduce((sum, r) => sum + r.apiCalls, 0);
      expect(perHour.y.reduce((sum, n) => sum + n, 0)).toBeCloseTo(total, 1);
      if (source === 'cin7') {
        // The ledger counts a run's requests, not their times: a run that spans hours has them spread evenly over
        // its time (src/server/history.ts), so one that began before the last 24 hours counts for its share in them.
        const HOUR = 3_600_000;
        const since = Math.floor(Date.now() / HOUR) * HOUR - 23 * HOUR;
        const day = runs.reduce((sum, r) => {
          const start = r.startedAt.getTime();
          const end = (r.finishedAt ?? r.heartbeatAt).getTime();
          if (Math.floor(start / HOUR) === Math.floor(end / HOUR)) return sum + (start >= since ? r.apiCalls : 0);
          return sum + (r.apiCalls * Math.max(0, end - Math.max(start, since))) / (end - start);
        }, 0);
        expect(bySource(requests, source, 'last 24 h').y.at(-1)).toBeCloseTo(day, 0);
      }
    }
    // uPlot drew every chart: a canvas in each figure.
    expect(await page.locator('figure.chart .uplot canvas').count()).toBe(5);
    // The recent runs, newest first, and the failures' reasons in words.
    expect(await page.locator('#runs tbody tr').count()).toBe(50);
    expect(await page.locator('#runs tbody tr.status-failed').first().textContent()).toContain(
      '503 Service Unavailable',
    );
    expect(problems).toEqual([]);

    mkdirSync(RESULTS, { recursive: true });
    await page.screenshot({ path: `${RESULTS}status-page.png`, fullPage: true });
    // The README's picture, the top of the page where the sources and the charts are: written to the docs only when
    // asked (UPDATE_SCREENSHOT=1), so that a test run leaves the checkout as it found it.
    await page.setViewportSize({ width: 1280, height: 1700 });
    await page.screenshot({ path: process.env.UPDATE_SCREENSHOT === '1' ? DOCS_SHOT : `${RESULTS}readme-shot.png` });

    // The session cookie set at login opens the queue dashboard in the same browser, its assets allowed by the CSP.
    await page.goto(`${server.url}/queues/`);
    await page.getByText('carecloud-slices').first().waitFor();
    // Bull Board asks Google Fonts for its typefaces; the policy keeps every request on this origin.
    expect(problems.filter((p) => !p.includes('https://fonts.googleapis.com/'))).toEqual([]);
    await page.context().close();
  });
});
