import { defineConfig } from 'vitest/config';

// Tests import packages by name; the `@tcc/source` export condition points them at `src/`,
// so no build is needed before `npm test`.
const conditions = ['@tcc/source', 'node', 'import', 'default'];

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: conditions } },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
