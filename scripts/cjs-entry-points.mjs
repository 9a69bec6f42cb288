// Writes the CommonJS face of a package after `tsc -b`: `dist/cjs/`, which the `require`
// condition of its `exports` points at (README "Design notes", module formats).
//
// The package runs as ES modules only. Node >= 20.19 loads them through `require()`, so each
// CommonJS entry point is one line handing over the ES module itself: a process that both
// imports and requires the package holds one copy of it, not two (no dual-package hazard).
// What CommonJS callers need besides is types TypeScript reads as CommonJS (under `module`
// node16 it refuses to let a CommonJS file import an ES module's types, TS1479): the
// declarations tsc emitted for `dist/`, copied under a `package.json` that says commonjs.
//
// Usage: node scripts/cjs-entry-points.mjs [package folder...] (default: every package)
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, posix, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const packages =
  process.argv.length > 2
    ? process.argv.slice(2)
    : readdirSync(join(root, 'packages')).map((name) => join(root, 'packages', name));

for (const folder of packages.map((p) => resolve(p))) {
  const manifest = JSON.parse(readFileSync(join(folder, 'package.json'), 'utf8'));
  const dist = join(folder, 'dist');
  const cjs = join(dist, 'cjs');
  rmSync(cjs, { recursive: true, force: true });
  copyDeclarations(dist, cjs);
  writeFileSync(join(cjs, 'package.json'), '{ "type": "commonjs" }\n');

  for (const [subpath, target] of Object.entries(manifest.exports)) {
    if (typeof target === 'string') continue; // ./package.json
    const esm = target.import?.default;
    const cjsEntry = target.require?.default;
    if (typeof esm !== 'string' || typeof cjsEntry !== 'string')
      throw new Error(`${manifest.name}: exports["${subpath}"] needs import.default and require.default`);
    const file = join(folder, cjsEntry);
    // Always starts with `../`: the entry sits in `dist/cjs/`, the module it hands over in `dist/`.
    const specifier = posix.normalize(relative(dirname(file), join(folder, esm)).split('\\').join('/'));
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, `'use strict';\nmodule.exports = require('${specifier}');\n`);
  }
}

/** Copies the `.d.ts` files of `from` and their maps to `to`, same layout (`to` is emptied first). */
function copyDeclarations(from, to) {
  for (const entry of readdirSync(from, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const source = join(entry.parentPath, entry.name);
    const destination = join(to, relative(from, source));
    if (entry.name.endsWith('.d.ts')) {
      mkdirSync(dirname(destination), { recursive: true });
      cpSync(source, destination);
    } else if (entry.name.endsWith('.d.ts.map')) {
      // One folder deeper: the map's way back to `src/` gains a `../`.
      const map = JSON.parse(readFileSync(source, 'utf8'));
      map.sources = map.sources.map((s) => `../${s}`);
      mkdirSync(dirname(destination), { recursive: true });
      writeFileSync(destination, JSON.stringify(map));
    }
  }
}
