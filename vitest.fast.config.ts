import { defineConfig } from 'vitest/config';

// `npm run test:fast`: the tests that need no PostgreSQL and no Redis (pure code and the fake servers), for the
// edit-test loop. The setup file refuses connections to the two services, so a test that comes to need them
// fails here at once and belongs under test/integration or test/db instead.
export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts', 'test/fake/**/*.test.ts', 'test/sources/**/*.test.ts'],
    setupFiles: ['test/helpers/no-services.ts'],
  },
});
