/**
 * Builds dist/ once before the tests (scripts/build.mjs, a few seconds): the commands the tests run as an operator
 * would are the compiled ones `npm start` and the image run (test/helpers/run-command.ts), never a stale build.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export default function setup(): void {
  execFileSync(process.execPath, [fileURLToPath(new URL('../scripts/build.mjs', import.meta.url))], {
    stdio: 'inherit',
  });
}
