/**
 * docker-compose.yml and the Dockerfile, read as Docker would read them (no Docker engine runs here): the path the
 * README gives a newcomer works, settings in .env reach the right containers, and every command, port, path and
 * healthcheck is one the service really has.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { ConfigError } from '../../src/errors.ts';
import { TEST_SERVER_URL } from '../helpers/db.ts';
import {
  containerEnv,
  dockerfile,
  envExample,
  execForm,
  healthcheckCommand,
  loadCompose,
  npmStartCommand,
  publishedPort,
  read,
  runHealthcheck,
  servedPaths,
} from './deploy-files.ts';

const SERVICES = ['scheduler', 'worker'] as const;
const defaults = loadConfig({});
const defaultDatabase = new URL(defaults.databaseUrl.reveal());
const defaultRedis = new URL(defaults.redisUrl.reveal());

describe('docker compose up -d postgres redis, then the Quick start on this machine', () => {
  const { postgres, redis } = loadCompose({}).services;

  it('starts the Postgres the default DATABASE_URL, the tests and the benchmark log in to', () => {
    expect(defaultDatabase.hostname).toBe('localhost');
    expect(publishedPort(postgres!.ports![0]!)).toEqual(['127.0.0.1', Number(defaultDatabase.port || 5432), 5432]);
    expect(decodeURIComponent(defaultDatabase.username)).toBe(postgres!.environment!.POSTGRES_USER);
    expect(defaultDatabase.pathname).toBe(`/${postgres!.environment!.POSTGRES_DB}`);
    // None of them carries a password: the compose Postgres asks for none unless .env says otherwise.
    expect(defaultDatabase.password).toBe('');
    if (process.env.TEST_DATABASE_SERVER === undefined) {
      const tests = new URL(TEST_SERVER_URL);
      expect([tests.username, tests.password, Number(tests.port || 5432)]).toEqual([
        postgres!.environment!.POSTGRES_USER,
        '',
        5432,
      ]);
    }
    // The image initialises a database without a password only under trust authentication.
    expect(postgres!.environment).toMatchObject({ POSTGRES_HOST_AUTH_METHOD: 'trust', POSTGRES_PASSWORD: '' });
  });

  it('starts the Redis the default REDIS_URL reaches, without a password unless REDIS_PASSWORD is set', () => {
    expect(defaultRedis.hostname).toBe('localhost');
    expect(publishedPort(redis!.ports![0]!)).toEqual(['127.0.0.1', Number(defaultRedis.port || 6379), 6379]);
    expect(defaultRedis.password).toBe('');
    const command = redis!.command!;
    expect(command[command.indexOf('--requirepass') + 1]).toBe('');
  });

  it('lets the containers log in with their URL, whose password is empty, to a Postgres that trusts them', async () => {
    const server = new URL(TEST_SERVER_URL);
    const url = new URL(containerEnv(loadCompose({}).services.worker!, null).DATABASE_URL!);
    expect(url.password).toBe('');
    url.host = server.host;
    url.pathname = '/postgres';
    const client = new pg.Client({ connectionString: url.toString() });
    await client.connect();
    try {
      const { rows } = await client.query<{ user: string }>('SELECT current_user AS user');
      expect(rows[0]!.user).toBe(postgres!.environment!.POSTGRES_USER);
    } finally {
      await client.end();
    }
  });

  it('is what the README, docs/deploy.md and .env.example say the defaults are', () => {
    const readme = read('README.md');
    const deploy = read('docs/deploy.md');
    for (const url of [defaults.databaseUrl.reveal(), defaults.redisUrl.reveal()]) {
      expect(readme.includes(url), `README.md names ${url}`).toBe(true);
      expect(deploy.includes(url), `docs/deploy.md names ${url}`).toBe(true);
    }
    // Empty in .env.example, because compose reads .env too: a localhost URL there would reach into the containers.
    expect(envExample()).toMatchObject({ DATABASE_URL: '', REDIS_URL: '' });
    expect(read('.env.example').replace(/\n# /g, '')).toContain(defaults.databaseUrl.reveal());
    expect(read('.env.example')).toContain(defaults.redisUrl.reveal());
  });
});

describe('docker compose up: the service', () => {
  it('reaches the compose Postgres and Redis with .env copied from .env.example', () => {
    const dotEnv = envExample();
    const compose = loadCompose(dotEnv);
    const postgres = compose.services.postgres!.environment!;
    for (const name of SERVICES) {
      const env = containerEnv(compose.services[name]!, dotEnv);
      const database = new URL(env.DATABASE_URL!);
      expect(`${database.username}:${database.password}@${database.host}${database.pathname}`, name).toBe(
        `${postgres.POSTGRES_USER}:${postgres.POSTGRES_PASSWORD}@postgres:5432/${postgres.POSTGRES_DB}`,
      );
      expect(new URL(env.REDIS_URL!).host, name).toBe('redis:6379');
    }
  });

  it('uses an external Postgres and Redis named in .env for every service', () => {
    const external = {
      DATABASE_URL: 'postgresql://sync:Pg-pw-81f2@db.example.internal:5432/vouchers',
      REDIS_URL: 'rediss://:Rd-pw-3c9a@cache.example.internal:6380',
    };
    const dotEnv = { ...envExample(), ...external };
    const compose = loadCompose(dotEnv);
    for (const name of SERVICES) expect(containerEnv(compose.services[name]!, dotEnv), name).toMatchObject(external);
  });

  it('protects the compose Postgres and Redis with the passwords set in .env, and gives them to the service', () => {
    const passwords = { POSTGRES_PASSWORD: 'pg0local0e5b', REDIS_PASSWORD: 'rd0local0a7c' };
    const dotEnv = { ...envExample(), ...passwords, POSTGRES_HOST_AUTH_METHOD: 'scram-sha-256' };
    const { services } = loadCompose(dotEnv);
    expect(services.postgres!.environment).toMatchObject({
      POSTGRES_PASSWORD: passwords.POSTGRES_PASSWORD,
      POSTGRES_HOST_AUTH_METHOD: 'scram-sha-256',
    });
    const command = services.redis!.command!;
    expect(command[command.indexOf('--requirepass') + 1]).toBe(passwords.REDIS_PASSWORD);
    expect(services.redis!.environment!.REDISCLI_AUTH).toBe(passwords.REDIS_PASSWORD);
    for (const name of SERVICES) {
      const env = containerEnv(services[name]!, dotEnv);
      expect(new URL(env.DATABASE_URL!).password, name).toBe(passwords.POSTGRES_PASSWORD);
      expect(new URL(env.REDIS_URL!).password, name).toBe(passwords.REDIS_PASSWORD);
    }
  });

  it('runs the scheduler apart from the workers, both with the command of npm start and their role', () => {
    const { services } = loadCompose({});
    expect(services.scheduler!.command).toEqual([...npmStartCommand(), '--role', 'scheduler']);
    expect(services.worker!.command).toEqual([...npmStartCommand(), '--role', 'worker']);
    // `--scale worker=3` needs a worker with no fixed name and no host port of its own.
    expect(services.worker).not.toHaveProperty('container_name');
    expect(services.worker).not.toHaveProperty('hostname');
    expect(services.worker).not.toHaveProperty('ports');
    for (const name of SERVICES) {
      expect(services[name]!.depends_on, name).toEqual({
        postgres: { condition: 'service_healthy' },
        redis: { condition: 'service_healthy' },
      });
      expect(services[name]!.stop_grace_period, name).toBe('60s');
    }
  });

  it('publishes every port on 127.0.0.1 only, the status page on HTTP_PORT', () => {
    const { services } = loadCompose({});
    const ports = Object.entries(services).flatMap(([name, s]) => (s.ports ?? []).map((p) => [name, p] as const));
    expect(ports.length).toBeGreaterThanOrEqual(3);
    for (const [name, port] of ports) expect(publishedPort(port)[0], name).toBe('127.0.0.1');
    const scheduler = services.scheduler!;
    expect(publishedPort(scheduler.ports![0]!)[2]).toBe(Number(scheduler.environment!.HTTP_PORT));
    const chosen = loadCompose({ HTTP_PORT: '9311' }).services.scheduler!;
    expect(publishedPort(chosen.ports![0]!)).toEqual(['127.0.0.1', 9311, Number(scheduler.environment!.HTTP_PORT)]);
  });

  it('requires HTTP_TOKEN for the scheduler, whose page is reached from outside its container', () => {
    const dotEnv = envExample();
    const { services } = loadCompose(dotEnv);
    const scheduler = containerEnv(services.scheduler!, dotEnv);
    expect(scheduler.HTTP_HOST).toBe('0.0.0.0');
    expect(() => loadConfig(scheduler)).toThrow(ConfigError);
    expect(() => loadConfig(scheduler)).toThrow(/^HTTP_HOST is not a loopback address, so HTTP_TOKEN must be set/);
    const token = { HTTP_TOKEN: 'e3b0c44298fc1c149afbf4c8996fb924' };
    expect(loadConfig(containerEnv(services.scheduler!, { ...dotEnv, ...token })).server).toMatchObject({
      host: '0.0.0.0',
      port: 8080,
    });
    // A worker answers its own healthcheck only, on loopback: it starts without a token.
    expect(loadConfig(containerEnv(services.worker!, dotEnv)).server).toMatchObject({ host: '127.0.0.1', port: 8080 });
  });
});

describe('healthchecks', () => {
  const { services } = loadCompose({});
  const image = dockerfile();
  const imageCheck = image.find((i) => i.keyword === 'HEALTHCHECK')!;
  const checks: [string, string[]][] = [
    ...SERVICES.map((name) => [name, healthcheckCommand(services[name]!.healthcheck!.test)] as [string, string[]]),
    ['the image', execForm(imageCheck.args.replace(/^(--\S+\s+)*CMD\s+/, ''))],
  ];

  it.each(checks)('%s: asks /readyz on HTTP_PORT, healthy only when it answers 200', async (_name, command) => {
    expect(servedPaths()).toContain('/readyz');
    expect(command[0]).toBe('node');
    expect(await runHealthcheck(command, 200)).toEqual({ code: 0, asked: ['/readyz'] });
    expect(await runHealthcheck(command, 503)).toEqual({ code: 1, asked: ['/readyz'] });
  });

  it('the image turns the endpoint on at the port compose uses, runs as node, and leaves .env out', () => {
    expect(image.filter((i) => i.keyword === 'ENV').map((i) => i.args)).toContain('HTTP_PORT=8080');
    expect(image.filter((i) => i.keyword === 'EXPOSE').map((i) => i.args)).toEqual(['8080']);
    for (const name of SERVICES) expect(services[name]!.environment!.HTTP_PORT, name).toBe('8080');
    expect(image.findLast((i) => i.keyword === 'USER')?.args).toBe('node');
    expect(execForm(image.findLast((i) => i.keyword === 'CMD')!.args)).toEqual(npmStartCommand());
    const ignored = read('.dockerignore').split('\n');
    expect(ignored).toEqual(expect.arrayContaining(['.env', '.env.*', '!.env.example', 'node_modules']));
  });
});

describe('the compose Redis, run here as its command says', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'compose-redis-'));
  const running: ChildProcess[] = [];
  afterAll(() => {
    for (const child of running) child.kill('SIGKILL');
    rmSync(scratch, { recursive: true, force: true });
  });

  it.each([
    ['without REDIS_PASSWORD', ''],
    ['with REDIS_PASSWORD', 'rd0local0a7c'],
  ])('%s: the healthcheck passes, and the service reaches it', async (_label, password) => {
    const dotEnv = { ...envExample(), REDIS_PASSWORD: password };
    const { services } = loadCompose(dotEnv);
    const redis = services.redis!;
    const port = await freePort();
    // Its own command, then a port of its own and no files, which come later and so win.
    const [binary, ...args] = redis.command!;
    const child = spawn(
      binary!,
      [...args, '--port', String(port), '--bind', '127.0.0.1', '--dir', scratch, '--appendonly', 'no', '--save', ''],
      {
        stdio: 'ignore',
      },
    );
    running.push(child);
    const check = (auth: string) =>
      new Promise<number | null>((resolve) => {
        // The same shell line, pointed at this port.
        const line = redis.healthcheck!.test[1]!.replace('redis-cli', `redis-cli -p ${port}`);
        spawn('/bin/sh', ['-c', line], { env: { PATH: process.env.PATH, REDISCLI_AUTH: auth }, stdio: 'ignore' }).on(
          'exit',
          resolve,
        );
      });
    await expect.poll(() => check(redis.environment!.REDISCLI_AUTH!), { timeout: 10_000 }).toBe(0);
    if (password !== '') expect(await check('wrong-password')).not.toBe(0);

    const url = new URL(containerEnv(services.worker!, dotEnv).REDIS_URL!);
    url.host = `127.0.0.1:${port}`;
    const client = new Redis(url.toString(), { maxRetriesPerRequest: 1, lazyConnect: true });
    try {
      await client.connect();
      expect(await client.ping()).toBe('PONG');
    } finally {
      client.disconnect();
    }
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
