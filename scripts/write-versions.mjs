// Writes each package's version into its `src/telemetry/version.ts`, from its package.json.
// The version is a constant in the source, not read from package.json at load time, so that an
// application bundled into one file (esbuild, webpack) still runs. `npm run version-packages`
// calls this after `changeset version`; the telemetry tests fail when a constant is stale.
import { readFileSync, writeFileSync } from 'node:fs';

const HEADER = `/**
 * This package's version, for the instrumentation scope of its tracer and meter. Written from
 * package.json by scripts/write-versions.mjs (a constant, so that a bundled application needs no
 * package.json at run time); the telemetry tests check it against package.json.
 */
`;

for (const pkg of ['core', 'recovery']) {
  const root = new URL(`../packages/${pkg}/`, import.meta.url);
  const { version } = JSON.parse(readFileSync(new URL('package.json', root), 'utf8'));
  writeFileSync(new URL('src/telemetry/version.ts', root), `${HEADER}export const VERSION = '${version}';\n`);
}
