import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Compiles dist/ once: the commands the tests run are the compiled ones (test/helpers/run-command.ts).
    globalSetup: ['test/global-setup.ts'],
    // Integration tests share one Postgres and one Redis; each creates its own database and queue names, so files
    // may run side by side. Two at a time: most of a file's time is spent waiting (for rate limits, processes,
    // a page of a slow fake), and on a 2-core machine that halves the suite's time; more would only crowd the CPU.
    fileParallelism: true,
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
