/**
 * Reading the deployment files as Docker Compose, Docker and Kubernetes would, since no Docker engine or cluster
 * runs here: Compose's variable interpolation, the Dockerfile's instructions, and a healthcheck run for real
 * against a stand-in endpoint.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseEnv } from 'node:util';
import { parse, parseAllDocuments } from 'yaml';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const read = (file: string) => readFileSync(join(ROOT, file), 'utf8');

/** The variables .env.example sets (every setting the service reads), with their values. */
export const envExample = (): Record<string, string> => parseEnv(read('.env.example')) as Record<string, string>;

/**
 * Compose's interpolation of one value: `$$`, `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
 * `${VAR:+alt}`, `${VAR+alt}`, `${VAR:?error}`, `${VAR?error}`, with operands nested as deep as they like.
 */
export function interpolate(text: string, env: Record<string, string | undefined>): string {
  const [value, end] = expand(text, 0, env, false);
  if (end !== text.length) throw new Error(`unbalanced "}" in ${JSON.stringify(text)}`);
  return value;
}

function expand(text: string, start: number, env: Record<string, string | undefined>, inBraces: boolean) {
  let out = '';
  let i = start;
  while (i < text.length) {
    const c = text[i]!;
    if (inBraces && c === '}') return [out, i] as const;
    if (c !== '$') {
      out += c;
      i++;
      continue;
    }
    const next = text[i + 1];
    if (next === '$') {
      out += '$';
      i += 2;
    } else if (next === '{') {
      const name = /^[_a-zA-Z][_a-zA-Z0-9]*/.exec(text.slice(i + 2))?.[0];
      if (!name) throw new Error(`bad variable at ${JSON.stringify(text.slice(i))}`);
      let j = i + 2 + name.length;
      const op = /^(:-|-|:\+|\+|:\?|\?)?/.exec(text.slice(j))![0];
      j += op.length;
      const [operand, close] = op ? expand(text, j, env, true) : (['', j] as const);
      if (text[close] !== '}') throw new Error(`unclosed \${${name} in ${JSON.stringify(text)}`);
      out += substitute(name, op, operand, env);
      i = close + 1;
    } else if (next !== undefined && /[_a-zA-Z]/.test(next)) {
      const name = /^[_a-zA-Z][_a-zA-Z0-9]*/.exec(text.slice(i + 1))![0];
      out += env[name] ?? '';
      i += 1 + name.length;
    } else {
      out += '$';
      i++;
    }
  }
  if (inBraces) throw new Error(`unclosed "\${" in ${JSON.stringify(text)}`);
  return [out, i] as const;
}

function substitute(name: string, op: string, operand: string, env: Record<string, string | undefined>): string {
  const value = env[name];
  const set = value !== undefined;
  const nonEmpty = set && value !== '';
  switch (op) {
    case ':-':
      return nonEmpty ? value : operand;
    case '-':
      return set ? value : operand;
    case ':+':
      return nonEmpty ? operand : '';
    case '+':
      return set ? operand : '';
    case ':?':
    case '?':
      if (op === ':?' ? nonEmpty : set) return value!;
      throw new Error(`required variable ${name} is missing a value: ${operand}`);
    default:
      return value ?? '';
  }
}

function interpolateValues(value: unknown, env: Record<string, string | undefined>): unknown {
  if (typeof value === 'string') return interpolate(value, env);
  if (Array.isArray(value)) return value.map((v) => interpolateValues(v, env));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolateValues(v, env)]));
  }
  return value;
}

export interface ComposeService {
  image?: string;
  build?: unknown;
  command?: string[];
  environment?: Record<string, string>;
  env_file?: unknown;
  ports?: string[];
  healthcheck?: { test: string[] };
  depends_on?: Record<string, unknown>;
  container_name?: string;
  hostname?: string;
  stop_grace_period?: string;
}

/**
 * docker-compose.yml as `docker compose config` would resolve it, with `env` as the shell environment plus the
 * project's .env (Compose reads both for interpolation).
 */
export function loadCompose(env: Record<string, string | undefined> = {}): {
  services: Record<string, ComposeService>;
} {
  const raw = parse(read('docker-compose.yml'), { merge: true }) as Record<string, unknown>;
  return interpolateValues(raw, env) as { services: Record<string, ComposeService> };
}

/** What a container of a service sees: its env_file (.env, when there is one) under its `environment`. */
export function containerEnv(service: ComposeService, dotEnv: Record<string, string> | null): Record<string, string> {
  return { ...(service.env_file && dotEnv ? dotEnv : {}), ...service.environment };
}

/** A published port as [host address, host port, container port]. */
export function publishedPort(spec: string): [string, number, number] {
  const match = /^(\d+\.\d+\.\d+\.\d+|\[[^\]]+\]):(\d+):(\d+)$/.exec(spec);
  if (!match) throw new Error(`port ${spec} is not published on one address (address:host-port:container-port)`);
  return [match[1]!, Number(match[2]), Number(match[3])];
}

export interface Instruction {
  keyword: string;
  args: string;
}

/** The Dockerfile's instructions, continuation lines joined, comments left out. */
export function dockerfile(): Instruction[] {
  const lines = read('Dockerfile').replace(/\\\n/g, ' ').split('\n');
  return lines
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const [, keyword, args] = /^(\S+)\s*(.*)$/.exec(line)!;
      return { keyword: keyword!.toUpperCase(), args: args! };
    });
}

/** The exec form of an instruction (`CMD ["node", …]`), after any `--flag=value` options. */
export function execForm(args: string): string[] {
  const json = args.replace(/^(--\S+\s+)*/, '');
  const parsed: unknown = JSON.parse(json);
  if (!Array.isArray(parsed) || !parsed.every((a) => typeof a === 'string')) throw new Error(`not exec form: ${args}`);
  return parsed;
}

/** `npm start` without its setup step: what the image, compose and the manifests must run. */
export function npmStartCommand(): string[] {
  const scripts = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts;
  const steps = scripts.start!.split('&&').map((step) => step.trim());
  return steps.at(-1)!.split(/\s+/);
}

/**
 * The paths the endpoint serves. Taken from the issue, and once src/server exists each must also be found in it,
 * so a renamed route shows here.
 */
export function servedPaths(): string[] {
  const paths = ['/healthz', '/readyz', '/metrics'];
  const dir = join(ROOT, 'src', 'server');
  if (!existsSync(dir)) return paths;
  const source = readTree(dir);
  return paths.filter((path) => source.includes(`'${path}'`) || source.includes(`"${path}"`));
}

function readTree(dir: string): string {
  return readdirSync(dir)
    .map((name) => join(dir, name))
    .map((path) =>
      statSync(path).isDirectory() ? readTree(path) : path.endsWith('.ts') ? readFileSync(path, 'utf8') : '',
    )
    .join('\n');
}

/** Every document of every YAML file under deploy/kubernetes, with the file it came from. */
export function kubernetesDocuments(): { file: string; doc: Record<string, unknown> }[] {
  const dir = join(ROOT, 'deploy', 'kubernetes');
  return readdirSync(dir)
    .filter((name) => /\.ya?ml$/.test(name))
    .sort()
    .flatMap((file) =>
      parseAllDocuments(readFileSync(join(dir, file), 'utf8')).map((document) => {
        if (document.errors.length > 0) throw new Error(`${file}: ${document.errors[0]!.message}`);
        return { file, doc: document.toJS() as Record<string, unknown> };
      }),
    );
}

export interface HealthcheckOutcome {
  code: number | null;
  /** The paths the check asked for. */
  asked: string[];
}

/**
 * Runs a healthcheck's command (exec form, as Docker would: no shell) with HTTP_PORT pointing at a stand-in
 * endpoint that answers `status`, and reports its exit code and what it asked for.
 */
export async function runHealthcheck(command: string[], status: number): Promise<HealthcheckOutcome> {
  const asked: string[] = [];
  const server = createServer((request, response) => {
    asked.push(request.url ?? '');
    response.writeHead(status, { 'content-type': 'text/plain' }).end(status === 200 ? 'ready' : 'not ready');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  try {
    const [file, ...args] = command;
    const child = spawn(file === 'node' ? process.execPath : file!, args, {
      env: { PATH: process.env.PATH, HTTP_PORT: String(port) },
      stdio: 'ignore',
    });
    const code = await new Promise<number | null>((resolve, reject) => {
      child.on('error', reject);
      child.on('exit', resolve);
    });
    return { code, asked };
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}

/** A healthcheck's `test` as the command Docker runs: `["CMD", …]` is exec form, `["CMD-SHELL", s]` is `sh -c s`. */
export function healthcheckCommand(test: string[]): string[] {
  if (test[0] === 'CMD') return test.slice(1);
  if (test[0] === 'CMD-SHELL') return ['/bin/sh', '-c', test[1]!];
  throw new Error(`unknown healthcheck form ${JSON.stringify(test)}`);
}
