import { defineConfig, env } from 'prisma/config';

// Used by the Prisma CLI only (generate, and migrate on machines that can fetch its engine).
// The service reads DATABASE_URL through src/config.ts.
export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  datasource: { url: env('DATABASE_URL') },
});
