#!/usr/bin/env node
// `npx voucher-sync <command>`: runs the TypeScript sources through tsx, so a clean clone needs only `npm ci`.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
