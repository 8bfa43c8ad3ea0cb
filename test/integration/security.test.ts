/**
 * Security and hygiene, end to end: the read-only role BI tools connect as, and secrets and personal data kept out
 * of everything the service prints or stores about its runs.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { createServer, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CARECLOUD_BASE_PATH } from '../../src/fake/carecloud.ts';
import { TEST_SERVER_URL } from '../helpers/db.ts';
import { runCommand } from '../helpers/run-command.ts';
import { createHarness, REDIS_URL, type Harness } from '../helpers/sync-harness.ts';

/** Which of `secrets` occur in `text` (none, we hope). */
function leaked(text: string, secrets: Iterable<string>): string[] {
  return [...new Set(secrets)].filter((secret) => secret.length > 0 && text.includes(secret));
}

describe('the reporting role for BI tools', () => {
  const role = `vs_reporting_${randomBytes(5).toString('hex')}`;
  const squatter = `${role}_owner`;
  let h: Harness;
  let admin: pg.Client;

  beforeAll(async () => {
    h = await createHarness();
    await h.sync('cin7');
    await h.sync('carecloud');
    // An e-mail address written into a free text too, not only in Cin7's customerEmail.
    const [voucher] = await h.vouchers('cin7');
    h.cin7.store.update(voucher!.sourceId, { description: 'Reissued for jan.novak@example.com' });
    await h.sync('cin7', 'full');
    admin = new pg.Client({ connectionString: h.databaseUrl });
    await admin.connect();
  });
  afterAll(async () => {
    await admin?.end();
    // The database goes first: with it go the role's grants and default privileges, which would block DROP ROLE.
    await h?.close();
    const server = new pg.Client({ connectionString: `${TEST_SERVER_URL}/postgres` });
    await server.connect();
    try {
      for (const name of [role, squatter]) await server.query(`DROP ROLE IF EXISTS ${server.escapeIdentifier(name)}`);
    } finally {
      await server.end();
    }
  });

  const command = (env: Record<string, string>) =>
    runCommand('src/cli/main.ts', ['db:reporting-role'], { DATABASE_URL: h.databaseUrl, ...env });

  /** A session as the role. Trust authentication: connecting by name is enough to exercise its privileges. */
  async function connectAs(name: string): Promise<pg.Client> {
    const url = new URL(h.databaseUrl);
    url.username = name;
    const client = new pg.Client({ connectionString: url.toString() });
    await client.connect();
    return client;
  }

  async function sqlState(client: pg.Client, sql: string): Promise<string> {
    try {
      await client.query(sql);
    } catch (error) {
      return String((error as { code?: unknown }).code);
    }
    return 'succeeded';
  }

  /** True when `password` is the one behind a SCRAM-SHA-256 verifier as PostgreSQL stores it (RFC 5802, 7677). */
  function scramMatches(verifier: string, password: string): boolean {
    const match = /^SCRAM-SHA-256\$(\d+):([^$]+)\$([^:]+):(.+)$/.exec(verifier);
    if (!match) return false;
    const salted = pbkdf2Sync(password, Buffer.from(match[2]!, 'base64'), Number(match[1]), 32, 'sha256');
    const storedKey = createHash('sha256')
      .update(createHmac('sha256', salted).update('Client Key').digest())
      .digest('base64');
    return storedKey === match[3];
  }

  const storedPassword = async () =>
    (await admin.query<{ p: string | null }>('SELECT rolpassword AS p FROM pg_authid WHERE rolname = $1', [role]))
      .rows[0]?.p ?? null;

  it('reads reporting.vouchers and nothing else; the command is idempotent and never prints the password', async () => {
    const firstPassword = `Bi-${randomBytes(9).toString('hex')}`;
    // Not ASCII: PostgreSQL hashes this one itself (SASLprep), the first one is hashed by the command.
    const secondPassword = `Bi-héslo-${randomBytes(9).toString('hex')}`;
    const first = await command({ REPORTING_ROLE: role, REPORTING_PASSWORD: firstPassword });
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout).toContain(`Created role ${role}`);
    expect(scramMatches((await storedPassword())!, firstPassword)).toBe(true);

    // A second run with a new password: same role, new password, same privileges.
    const second = await command({ REPORTING_ROLE: role, REPORTING_PASSWORD: secondPassword });
    expect(second.code).toBe(0);
    expect(second.stdout).toContain(`Updated role ${role}`);
    const verifier = (await storedPassword())!;
    expect(scramMatches(verifier, secondPassword)).toBe(true);
    expect(scramMatches(verifier, firstPassword)).toBe(false);
    expect(
      leaked(first.stdout + first.stderr + second.stdout + second.stderr, [firstPassword, secondPassword]),
    ).toEqual([]);

    // A view added by a later migration (created by the schema's owner) is readable without running the command again.
    await admin.query(
      'CREATE VIEW reporting.voucher_totals AS SELECT source, count(*) AS n FROM public.vouchers GROUP BY source',
    );

    const bi = await connectAs(role);
    try {
      const synced = await h.db.voucher.count();
      expect(synced).toBeGreaterThan(0);
      const { rows } = await bi.query<{ n: string }>('SELECT count(*) AS n FROM reporting.vouchers');
      expect(Number(rows[0]!.n)).toBe(synced);
      expect(await sqlState(bi, 'SELECT * FROM reporting.voucher_totals')).toBe('succeeded');

      // Sessions start read-only (which also stops temporary tables); the privileges below hold even when a session
      // turns that off.
      expect(await sqlState(bi, 'CREATE TEMP TABLE bi_scratch (x int)')).toBe('25006');
      await bi.query('SET default_transaction_read_only = off');

      const denied = '42501';
      expect(
        await sqlState(bi, "INSERT INTO reporting.vouchers (source, source_id, code) VALUES ('cin7', 'X-1', 'X-1')"),
      ).toBe(denied);
      expect(await sqlState(bi, "UPDATE reporting.vouchers SET code = 'x'")).toBe(denied);
      expect(await sqlState(bi, 'DELETE FROM reporting.vouchers')).toBe(denied);
      for (const table of [
        'vouchers',
        'sync_state',
        'sync_runs',
        'rejected_records',
        'scan_seen',
        '_prisma_migrations',
      ]) {
        expect(await sqlState(bi, `SELECT * FROM public.${table} LIMIT 1`), `SELECT on ${table}`).toBe(denied);
        expect(await sqlState(bi, `DELETE FROM public.${table}`), `DELETE on ${table}`).toBe(denied);
        expect(await sqlState(bi, `TRUNCATE public.${table}`), `TRUNCATE on ${table}`).toBe(denied);
      }
      expect(await sqlState(bi, "UPDATE public.vouchers SET code = 'x'")).toBe(denied);
      expect(await sqlState(bi, 'CREATE TABLE public.bi_scratch (x int)')).toBe(denied);
      expect(await sqlState(bi, 'CREATE TABLE reporting.bi_scratch (x int)')).toBe(denied);
      expect(await sqlState(bi, 'CREATE VIEW reporting.bi_view AS SELECT 1 AS x')).toBe(denied);
      expect(await sqlState(bi, 'CREATE SCHEMA bi_schema')).toBe(denied);
      expect(await sqlState(bi, 'DROP VIEW reporting.vouchers')).toBe(denied);
    } finally {
      await bi.end();
    }

    // The checker itself: a password PostgreSQL hashed on its own is recognised.
    await admin.query(`ALTER ROLE ${admin.escapeIdentifier(role)} PASSWORD 'hashed-by-the-server'`);
    expect(scramMatches((await storedPassword())!, 'hashed-by-the-server')).toBe(true);
  });

  it('reads every view of reporting, whoever made it, and none of them returns an e-mail address', async () => {
    const email = '[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\\.[A-Za-z0-9-]+)*\\.[A-Za-z]{2,}';
    const views = (
      await admin.query<{ name: string }>(
        `SELECT format('%I.%I', n.nspname, c.relname) AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = 'reporting' AND c.relkind IN ('v', 'm') ORDER BY 1`,
      )
    ).rows.map((r) => r.name);
    expect(views).toEqual(expect.arrayContaining(['reporting.sync_status', 'reporting.vouchers']));
    // What is looked for is there to find: the internal table keeps the addresses the sources sent.
    const internal = await admin.query<{ raw: number; description: number }>(
      `SELECT count(*) FILTER (WHERE raw::text ~ $1)::int AS raw, count(*) FILTER (WHERE description ~ $1)::int AS description
         FROM public.vouchers`,
      [email],
    );
    expect(internal.rows[0]!.raw).toBeGreaterThan(0);
    expect(internal.rows[0]!.description).toBe(1);

    const bi = await connectAs(role);
    try {
      const found: Record<string, number> = {};
      for (const view of views) {
        // The whole row as text: every column of every type, json and text ones included.
        const { rows } = await bi.query<{ rows: number; emails: number }>(
          `SELECT count(*)::int AS rows, count(*) FILTER (WHERE t::text ~ $1)::int AS emails FROM ${view} AS t`,
          [email],
        );
        found[view] = rows[0]!.emails;
        if (view === 'reporting.vouchers' || view === 'reporting.sync_status')
          expect(rows[0]!.rows, view).toBeGreaterThan(0);
      }
      expect(found).toEqual(Object.fromEntries(views.map((view) => [view, 0])));
      const { rows } = await bi.query<{ source: string; data_as_of: Date | null }>(
        'SELECT source, data_as_of FROM reporting.sync_status ORDER BY source',
      );
      expect(rows.map((r) => r.source)).toEqual(['carecloud', 'cin7']);
    } finally {
      await bi.end();
    }
  });

  it('reports bad settings one line each without the password, and refuses grants or roles that give more than read access', async () => {
    const missing = await command({ REPORTING_ROLE: 'BI Reader' });
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(
        /^Configuration error: REPORTING_ROLE must be 1 to 63 lowercase letters.*\(got "BI Reader"\)$/,
      ),
      expect.stringMatching(/^Configuration error: REPORTING_PASSWORD must be set/),
    ]);

    const short = await command({ REPORTING_ROLE: role, REPORTING_PASSWORD: 'Sh0rt!' });
    expect(short.code).toBe(1);
    expect(short.stderr.trim().split('\n')).toEqual([
      'Configuration error: REPORTING_PASSWORD must be at least 8 characters',
    ]);
    expect(short.stderr).not.toContain('Sh0rt!');

    // A grant to PUBLIC would reach the role: the command names it and changes nothing (the password stays).
    await admin.query('GRANT SELECT ON public.sync_runs TO PUBLIC');
    const before = await storedPassword();
    const widened = await command({ REPORTING_ROLE: role, REPORTING_PASSWORD: `Bi-${randomBytes(9).toString('hex')}` });
    await admin.query('REVOKE SELECT ON public.sync_runs FROM PUBLIC');
    expect(widened.code).toBe(1);
    expect(widened.stderr).toContain('it could also SELECT on public.sync_runs');
    expect(await storedPassword()).toBe(before);

    await admin.query(`CREATE ROLE ${admin.escapeIdentifier(squatter)} LOGIN CREATEDB`);
    const password = `Bi-${randomBytes(9).toString('hex')}`;
    const takeover = await command({ REPORTING_ROLE: squatter, REPORTING_PASSWORD: password });
    expect(takeover.code).toBe(1);
    expect(takeover.stderr).toContain(`role ${squatter} already exists`);
    expect(takeover.stderr + takeover.stdout).not.toContain(password);
    const { rows } = await admin.query<{ rolcreatedb: boolean; rolpassword: string | null }>(
      'SELECT rolcreatedb, rolpassword FROM pg_authid WHERE rolname = $1',
      [squatter],
    );
    expect(rows[0]).toEqual({ rolcreatedb: true, rolpassword: null });
  });

  it('names the other databases the role can still connect to, with what their owners run to stop it', async () => {
    const scratch = `vs_scratch_${randomBytes(4).toString('hex')}`;
    await admin.query(`CREATE DATABASE ${scratch}`);
    try {
      const password = `Bi-${randomBytes(9).toString('hex')}`;
      const run = await command({ REPORTING_ROLE: role, REPORTING_PASSWORD: password });
      expect(run.code).toBe(0);
      // PUBLIC's CONNECT reaches the role on every database of the server, and only their owners can revoke it.
      expect(run.stdout).toContain(scratch);
      expect(run.stdout).toContain(`REVOKE CONNECT ON DATABASE "${scratch}" FROM PUBLIC;`);
      expect(run.stdout).not.toContain(`DATABASE "${new URL(h.databaseUrl).pathname.slice(1)}"`);
      const asRole = (database: string) => {
        const url = new URL(h.databaseUrl);
        url.username = role;
        url.pathname = `/${database}`;
        return new pg.Client({ connectionString: url.toString() });
      };
      const before = asRole(scratch);
      await before.connect();
      await before.end();

      // Done as the command says, the role can no longer reach that database, and the command stops naming it.
      await admin.query(`REVOKE CONNECT ON DATABASE "${scratch}" FROM PUBLIC`);
      const after = asRole(scratch);
      await expect(after.connect()).rejects.toMatchObject({ code: '42501' });
      const again = await command({ REPORTING_ROLE: role, REPORTING_PASSWORD: password });
      expect(again.code).toBe(0);
      expect(again.stdout).not.toContain(scratch);
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS ${scratch} WITH (FORCE)`);
    }
  });
});

/** A pass-through HTTP proxy that notes every credential that crosses it: Authorization values and issued tokens. */
async function startRecordingProxy(target: string) {
  const seen = new Set<string>();
  const noteHeaders = (headers: IncomingHttpHeaders) => {
    const auth = headers.authorization;
    if (auth) seen.add(auth).add(auth.replace(/^\S+\s+/, ''));
  };
  const server = createServer((req, res) => {
    noteHeaders(req.headers);
    const upstream = httpRequest(
      new URL(req.url ?? '/', target),
      { method: req.method, headers: req.headers },
      (answer) => {
        const chunks: Buffer[] = [];
        answer.on('data', (chunk: Buffer) => chunks.push(chunk));
        answer.on('end', () => {
          const body = Buffer.concat(chunks);
          const token = /"bearer_token"\s*:\s*"([^"]+)"/.exec(body.toString('utf8'))?.[1];
          if (token) seen.add(token);
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          res.end(body);
        });
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    async stop() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}

describe('secrets and personal data', () => {
  const careCloudCredentials = {
    login: 'cc-api-user',
    password: `Cc-pw-${randomBytes(8).toString('hex')}`,
    appId: `cc-app-${randomBytes(8).toString('hex')}`,
  };
  const cin7Credentials = { username: 'cin7-api-user', apiKey: `c7-key-${randomBytes(8).toString('hex')}` };
  const wrongApiKey = `c7-wrong-${randomBytes(8).toString('hex')}`;
  const errorEmails = ['ops.oncall@example.org', 'jana.novakova@example.cz'];
  const noteEmail = 'petr.svoboda@example.com';
  let h: Harness | undefined;
  const proxies: Awaited<ReturnType<typeof startRecordingProxy>>[] = [];

  afterEach(async () => {
    for (const proxy of proxies.splice(0)) await proxy.stop();
    await h?.close();
    h = undefined;
  });

  /** The harness, with both fakes reached through recording proxies. */
  async function setUp(env: Record<string, string> = {}) {
    h = await createHarness({
      careCloud: { credentials: careCloudCredentials, count: 400 },
      cin7: { credentials: cin7Credentials, count: 400 },
      env: { CARECLOUD_PAGE_SIZE: '100', CIN7_PAGE_SIZE: '100', ...env },
    });
    const careCloudProxy = await startRecordingProxy(new URL(h.env.CARECLOUD_BASE_URL).origin);
    const cin7Proxy = await startRecordingProxy(new URL(h.env.CIN7_BASE_URL).origin);
    proxies.push(careCloudProxy, cin7Proxy);
    const childEnv = {
      ...h.env,
      LOG_LEVEL: 'debug',
      CARECLOUD_BASE_URL: careCloudProxy.origin + CARECLOUD_BASE_PATH,
      CIN7_BASE_URL: `${cin7Proxy.origin}/api`,
    };
    return { harness: h, childEnv, tokens: careCloudProxy.seen, basic: cin7Proxy.seen };
  }

  /** Every secret and every piece of personal data the service handled: none may be printed or stored in run records. */
  function secretsOf(harness: Harness, observed: Set<string>[], extra: string[] = []): string[] {
    const emails = [
      ...harness.cin7.store.all().map((v) => v.customerEmail),
      ...harness.cin7.store.malformed().map((v) => v.customerEmail),
      'integration@example.com', // the CareCloud login answer's user
      noteEmail,
      ...errorEmails,
    ].filter((e): e is string => typeof e === 'string' && e.includes('@'));
    return [
      careCloudCredentials.password,
      careCloudCredentials.appId,
      cin7Credentials.apiKey,
      ...observed.flatMap((s) => [...s]),
      ...emails,
      ...extra,
    ];
  }

  /** What the service kept about its runs: the ledger, the rejected records' reasons, and every job in Redis. */
  async function storedRunRecords(harness: Harness): Promise<{ text: string; failedReasons: string[] }> {
    const runs = await harness.db.syncRun.findMany();
    const rejected = await harness.db.rejectedRecord.findMany({ select: { reason: true } });
    const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    const texts: string[] = [
      JSON.stringify(runs, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v)),
      JSON.stringify(rejected),
    ];
    const failedReasons: string[] = [];
    try {
      for (const source of ['carecloud', 'cin7']) {
        const queue = new Queue(source, { connection, prefix: harness.prefix });
        const jobs = await queue.getJobs(['failed', 'completed', 'delayed', 'waiting', 'active']);
        texts.push(
          JSON.stringify(
            jobs.map((job) => ({
              failedReason: job.failedReason,
              stacktrace: job.stacktrace,
              returnvalue: job.returnvalue as unknown,
            })),
          ),
        );
        failedReasons.push(...jobs.filter((job) => job.failedReason).map((job) => `${source}: ${job.failedReason}`));
        await queue.close();
      }
    } finally {
      connection.disconnect();
    }
    return { text: texts.join('\n'), failedReasons };
  }

  it('a full sync of both sources through the command line, under faults, prints no secret or personal data', async () => {
    const { harness, childEnv, tokens, basic } = await setUp();
    const { careCloud, cin7 } = harness;
    const [noted] = careCloud.store.all();
    careCloud.store.update(noted!.voucher_id, { note: `Call ${noteEmail} before use` });
    careCloud.store.insertMalformed('comma-number');
    careCloud.store.insertMalformed('wrong-type');
    cin7.store.insertMalformed('zero-date');
    cin7.store.insertMalformed('missing-code');
    careCloud.faults.inject({ kind: 'status', status: 429, retryAfter: 1 }, { on: 'list' });
    cin7.faults.inject({ kind: 'status', status: 429 }, { on: 'list', times: 2 });
    careCloud.store.onListRequest(({ n }) => {
      if (n === 2) careCloud.store.expireTokens(); // the next request meets a 401 and logs in again
      if (n === 3) throw new Error(`database timeout while loading customer ${errorEmails[0]}`); // a 500 naming someone
    });
    cin7.store.onListRequest(({ n }) => {
      if (n === 2) throw new Error(`voucher owner ${errorEmails[1]} is locked`);
    });

    const run = await runCommand('src/cli/main.ts', ['sync', '--source', 'all', '--mode', 'full'], childEnv);
    const output = run.stdout + run.stderr;
    expect(run.code, output.slice(-2000)).toBe(0);

    // The faults really happened, and their error bodies reached the log (masked).
    expect(careCloud.stats.byStatus).toMatchObject({
      401: expect.any(Number),
      429: expect.any(Number),
      500: expect.any(Number),
    });
    expect(cin7.stats.byStatus).toMatchObject({ 429: expect.any(Number), 500: expect.any(Number) });
    expect(output).toContain('logging in again');
    expect(output).toContain('[email]');
    expect(await harness.db.rejectedRecord.count()).toBe(4);
    // What the search below looks for was really sent: two bearer tokens at least, and the Basic credentials.
    expect([...tokens].filter((t) => !t.startsWith('Bearer ')).length).toBeGreaterThanOrEqual(2);
    expect([...basic]).toContain(
      Buffer.from(`${cin7Credentials.username}:${cin7Credentials.apiKey}`).toString('base64'),
    );

    const secrets = secretsOf(harness, [tokens, basic]);
    expect(secrets.length).toBeGreaterThan(300);
    expect(leaked(output, secrets)).toEqual([]);
    expect(leaked((await storedRunRecords(harness)).text, secrets)).toEqual([]);
  });

  it('failing runs keep secrets and personal data out of the output, the failed jobs and sync_runs.error', async () => {
    const { harness, childEnv, tokens, basic } = await setUp({
      CIN7_API_KEY: wrongApiKey,
      JOB_ATTEMPTS: '1',
      HTTP_RETRIES: '0',
    });
    harness.careCloud.store.onListRequest(() => {
      throw new Error(`cannot read the vouchers of ${errorEmails[0]}`);
    });

    const run = await runCommand('src/cli/main.ts', ['sync', '--source', 'all'], childEnv);
    const output = run.stdout + run.stderr;
    expect(run.code, output.slice(-2000)).toBe(1);
    expect(run.stdout).toMatch(/carecloud\s+FAILED .*500/);
    expect(run.stdout).toMatch(/cin7\s+FAILED .*Cin7 rejected the API username or key/);

    const stored = await storedRunRecords(harness);
    const runs = await harness.db.syncRun.findMany({ orderBy: { source: 'asc' } });
    expect(runs.map((r) => [r.source, r.status])).toEqual([
      ['carecloud', 'failed'],
      ['cin7', 'failed'],
    ]);
    expect(runs[0]!.error).toContain('[email]');
    expect(stored.failedReasons.sort()).toEqual([
      expect.stringMatching(/^carecloud: carecloud answered 500 .*\[email\]/),
      expect.stringMatching(/^cin7: Cin7 rejected the API username or key/),
    ]);

    const wrongBasic = Buffer.from(`${cin7Credentials.username}:${wrongApiKey}`).toString('base64');
    expect([...basic]).toContain(wrongBasic);
    const secrets = secretsOf(harness, [tokens, basic], [wrongApiKey, wrongBasic]);
    expect(leaked(output, secrets)).toEqual([]);
    expect(leaked(stored.text, secrets)).toEqual([]);
  });
});
