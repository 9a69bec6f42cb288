import { configDefaults, defineConfig } from 'vitest/config';

// Tests import packages by name; the `@tcc/source` export condition points them at `src/`,
// so no build is needed before `npm test`. Vitest also hands the SSR conditions to Node as
// `--conditions` for the test processes, so they name no `import`: with it, CommonJS `require`
// calls inside dependencies (pg's own `require('pg-pool')`) would pick ESM wrappers. Vite adds
// `import`/`require` itself by the kind of each import.
const conditions = ['@tcc/source', 'node'];

export default defineConfig({
  resolve: { conditions: [...conditions, 'import', 'default'] },
  ssr: { resolve: { conditions, externalConditions: conditions } },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    // Packs and builds the packages in place: `npm run test:packaging`, after the suite (CI).
    exclude: [...configDefaults.exclude, 'test/packaging/**'],
    // Starts a throwaway Redis or PostgreSQL where none answers (test/support/servers.ts).
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Most files wait on servers, child processes and sockets rather than on the CPU: twice as
    // many workers as cores halves the wall time on a 2-core machine.
    maxWorkers: 4,
  },
});
