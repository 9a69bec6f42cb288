import { createRequire } from 'node:module';

/**
 * This package's version, for the instrumentation scope of its tracer and meter. Read from its
 * `package.json`, two folders up from this file both in `src/telemetry/` and in the built
 * `dist/telemetry/`, so it stays right whichever one runs and needs no copy kept in step.
 */
export const VERSION: string = (createRequire(import.meta.url)('../../package.json') as { version: string })
  .version;
