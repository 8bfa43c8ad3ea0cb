/**
 * .ci/run installs Debian's chromium and prometheus (promtool) when they are missing, before `npm ci`, since the
 * browser and promtool tests fail rather than skip under CI=true. Its apt step runs here against a stand-in
 * apt-get; the whole script is not run (it runs the whole suite).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { read, ROOT } from './deploy-files.ts';

const script = read('.ci/run');
const scratch = mkdtempSync(join(tmpdir(), 'ci-run-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** Its apt step, with the two paths it looks for replaced, run with a stand-in apt-get that logs its calls. */
function aptStep(paths: { chromium: string; promtool: string }, failFirstInstall: boolean): string[] {
  const step = /^missing=\(\)\n[\s\S]*?^fi\n/m.exec(script)?.[0];
  if (!step) throw new Error('.ci/run has no apt step starting with missing=()');
  const bin = mkdtempSync(join(scratch, 'bin-'));
  const log = join(bin, 'calls.log');
  writeFileSync(
    join(bin, 'apt-get'),
    [
      '#!/bin/bash',
      `echo "$DEBIAN_FRONTEND apt-get $*" >> ${log}`,
      `if [[ $1 == install && ${failFirstInstall ? `! -e ${bin}/updated` : 'false == true'} ]]; then exit 100; fi`,
      `[[ $1 == update ]] && touch ${bin}/updated`,
      'exit 0',
    ].join('\n'),
  );
  chmodSync(join(bin, 'apt-get'), 0o755);
  writeFileSync(join(bin, 'sudo'), '#!/bin/bash\nexec "$@"\n');
  chmodSync(join(bin, 'sudo'), 0o755);
  writeFileSync(log, '');
  const body = step.replaceAll('/usr/bin/chromium', paths.chromium).replaceAll('/usr/bin/promtool', paths.promtool);
  const result = spawnSync('bash', ['-c', `set -euo pipefail\n${body}`], {
    env: { PATH: `${bin}:${process.env.PATH}` },
    encoding: 'utf8',
  });
  expect(result.status, result.stderr).toBe(0);
  return readFileSync(log, 'utf8').split('\n').filter(Boolean);
}

describe('.ci/run', () => {
  it('is valid bash', () => {
    expect(() => execFileSync('bash', ['-n', join(ROOT, '.ci', 'run')])).not.toThrow();
  });

  it('installs chromium and prometheus before npm ci, refreshing the package lists only when that fails', () => {
    expect(script.indexOf('missing=()')).toBeGreaterThan(-1);
    expect(script.indexOf('missing=()')).toBeLessThan(script.indexOf('npm ci'));
    const none = { chromium: join(scratch, 'no-chromium'), promtool: join(scratch, 'no-promtool') };
    const install = 'noninteractive apt-get install -y --no-install-recommends chromium prometheus';
    expect(aptStep(none, false)).toEqual([install]);
    expect(aptStep(none, true)).toEqual([install, expect.stringMatching(/apt-get update$/), install]);
  });

  it('installs only what is missing, and nothing when both are there', () => {
    const present = process.execPath;
    expect(aptStep({ chromium: present, promtool: present }, false)).toEqual([]);
    expect(aptStep({ chromium: present, promtool: join(scratch, 'no-promtool') }, false)).toEqual([
      'noninteractive apt-get install -y --no-install-recommends prometheus',
    ]);
  });
});
