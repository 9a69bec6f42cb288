#!/usr/bin/env node
// The `tccctl` bin. A committed file, not the build's output: npm links a package's bins when it
// installs it, and only to files that exist then, so in a fresh clone of the repository (no
// `dist/` yet) a bin pointing into `dist/` would never be linked, even after a build.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/cli/main.js', import.meta.url);
if (existsSync(main)) {
  const { run } = await import(main.href);
  run();
} else if (existsSync(new URL('../src/cli/main.ts', import.meta.url))) {
  // A source checkout (a fresh clone): the published package always ships `dist/`.
  const root = fileURLToPath(new URL('../../../', import.meta.url));
  process.stderr.write(`tccctl: not built yet: run \`npm run build\` in ${root}, then tccctl again\n`);
  process.exitCode = 1;
} else {
  process.stderr.write(`tccctl: ${fileURLToPath(main)} is missing: reinstall @tcc/recovery\n`);
  process.exitCode = 1;
}
