import { spawn } from 'node:child_process';
import path from 'node:path';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { parseFakeCliArgs } from '../../src/fake/cli.ts';

const CLI = path.resolve(import.meta.dirname, '../../src/fake/cli.ts');
const run = (args: string[]) =>
  spawn(process.execPath, ['--import', 'tsx', CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });

describe('fake servers command line', () => {
  it('parses its options, with defaults', () => {
    expect(parseFakeCliArgs(['--seed', '7', '--churn', '--no-rate-limits', '--cin7-port', '0'])).toEqual({
      careCloudPort: 4010,
      cin7Port: 0,
      seed: 7,
      count: 10_000,
      churn: true,
      rateLimits: false,
    });
    expect(() => parseFakeCliArgs(['--count', 'many'])).toThrow(/--count must be a whole number/);
    expect(() => parseFakeCliArgs(['--carecloud-port', '70000'])).toThrow(/--carecloud-port/);
    expect(() => parseFakeCliArgs(['--colour'])).toThrow();
  });

  it('exits 2 with the usage on a bad argument', async () => {
    const child = run(['--count', 'lots']);
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const [code] = await once(child, 'exit');
    expect(code).toBe(2);
    expect(stderr).toMatch(/--count must be a whole number/);
    expect(stderr).toMatch(/Usage:/);
  });

  it('starts both fakes, prints how to reach them, and stops on SIGTERM', async () => {
    const child = run(['--carecloud-port', '0', '--cin7-port', '0', '--count', '30']);
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', () => stdout.includes('Ctrl-C') && resolve());
        child.once('exit', (code) => reject(new Error(`exited early with ${code}`)));
      });
      const value = (name: string) => new RegExp(`^${name}=(.*)$`, 'm').exec(stdout)?.[1] ?? '';
      const login = await fetch(`${value('CARECLOUD_BASE_URL')}/users/actions/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          user_external_application_id: value('CARECLOUD_APP_ID'),
          login: value('CARECLOUD_LOGIN'),
          password: value('CARECLOUD_PASSWORD'),
        }),
      });
      expect(login.status).toBe(200);
      const basic = Buffer.from(`${value('CIN7_USERNAME')}:${value('CIN7_API_KEY')}`).toString('base64');
      const vouchers = await fetch(`${value('CIN7_BASE_URL')}/v1/Voucher?rows=100`, {
        headers: { authorization: `Basic ${basic}` },
      });
      expect(await vouchers.json()).toHaveLength(30);
    } finally {
      child.kill('SIGTERM');
    }
    const [code] = await once(child, 'exit');
    expect(code).toBe(0);
  });
});
