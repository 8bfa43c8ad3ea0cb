import { defineConfig } from 'vitest/config';

/**
 * The chaos suite (`npm run test:chaos`): many seeds of hostile schedules against real worker processes,
 * restarts of the machine's PostgreSQL and Redis included. Files end in `.chaos.ts` so that `npm test`
 * (vitest.config.ts, `*.test.ts`) never picks them up; test/integration/convergence.test.ts is its fast subset.
 */
export default defineConfig({
  test: {
    include: ['test/chaos/**/*.chaos.ts'],
    // The worker processes run the compiled service, as `npm start` and the image do (test/chaos/process-controller.ts).
    globalSetup: ['test/global-setup.ts'],
    // One file at a time: the convergence suite restarts PostgreSQL and Redis, which the other must not see.
    fileParallelism: false,
    testTimeout: 900_000,
    hookTimeout: 120_000,
  },
});
