/**
 * The service runs with a bounded heap wherever it is started: `npm start`, the Docker image and the
 * benchmark's worker processes use the same Node flags, so the memory figures are those of the product.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { serviceNodeFlags } from '../../bench/infra.ts';

const read = (file: string) => readFileSync(new URL(`../../${file}`, import.meta.url), 'utf8');

describe('how the service is started', () => {
  it('npm start gives Node a heap limit', () => {
    expect(serviceNodeFlags()).toEqual([expect.stringMatching(/^--max-old-space-size=\d+$/)]);
  });

  it('the Docker image starts it with the same flags as npm start', () => {
    const cmd = /^CMD (\[.*\])$/m.exec(read('Dockerfile'))?.[1];
    expect(cmd).toBeDefined();
    const args = JSON.parse(cmd!) as string[];
    expect(args.filter((a) => a.startsWith('--max-old-space-size'))).toEqual(serviceNodeFlags());
    expect(args.slice(-2)).toEqual(['dist/src/cli/main.js', 'start']);
  });
});
