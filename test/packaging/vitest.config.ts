import { defineConfig } from 'vitest/config';

// The packaging test runs on its own (`npm run test:packaging`): its `npm pack` rebuilds every
// package's dist/ in place, which the suite's CLI and worker tests run from.
export default defineConfig({
  test: {
    root: new URL('../..', import.meta.url).pathname,
    include: ['test/packaging/**/*.test.ts'],
    // The same servers as the suite: the configured ones, else throwaway ones.
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 900_000,
  },
});
