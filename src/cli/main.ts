/** The entry point of `voucher-sync` (bin/voucher-sync.mjs) and of the `npm run` aliases. */
import { runProgram } from './program.ts';

await runProgram(process.argv.slice(2));
