/**
 * `npm run bench [-- <names>] [-- <options>]`: runs every benchmark in this folder (each
 * `<name>.bench.ts`: core first, then http, place-order, recovery, storage), one child process
 * each so that one benchmark's heap, hooks and connections never colour the next one's figures.
 * Leading bare words pick benchmarks by name (`npm run bench -- storage place-order`); every
 * `--option` is passed on to each of them (`--quick`, `--no-save`, `--check`, `--help`).
 * After the last one, the targets of all of them in one table (glance.ts).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GLANCE_FILE_ENV, glanceTable } from './glance.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const SUFFIX = '.bench.js';

const available = readdirSync(here)
  .filter((file) => file.endsWith(SUFFIX))
  .map((file) => file.slice(0, -SUFFIX.length))
  .sort((a, b) => (a === 'core' ? -1 : b === 'core' ? 1 : a.localeCompare(b)));

const argv = process.argv.slice(2);
const firstOption = argv.findIndex((arg) => arg.startsWith('-'));
const names = firstOption === -1 ? argv : argv.slice(0, firstOption);
const options = firstOption === -1 ? [] : argv.slice(firstOption);

const unknown = names.filter((name) => !available.includes(name));
if (unknown.length > 0) {
  console.error(`unknown benchmark ${unknown.join(', ')} (benchmarks: ${available.join(', ')})`);
  process.exit(2);
}

// Each benchmark appends its targets here; they are printed together at the end.
const glanceDir = mkdtempSync(join(tmpdir(), 'tcc-bench-'));
const glanceFile = join(glanceDir, 'targets.jsonl');

const failed: string[] = [];
try {
  for (const name of names.length > 0 ? names : available) {
    console.log(`\n=== bench: ${name} ===`);
    const run = spawnSync(process.execPath, ['--expose-gc', `${here}${name}${SUFFIX}`, ...options], {
      stdio: 'inherit',
      env: { ...process.env, [GLANCE_FILE_ENV]: glanceFile },
    });
    if (run.status !== 0) {
      failed.push(name);
      console.error(`bench ${name} exited with ${run.status ?? run.signal}`);
    }
  }
  const glance = glanceTable(glanceFile, failed);
  if (glance !== undefined) {
    const quick = options.includes('--quick') ? ' (--quick: smoke runs, not measurements)' : '';
    console.log(`\n=== ${glance.replace('\n', `${quick}\n`)}`);
  }
} finally {
  rmSync(glanceDir, { recursive: true, force: true });
}
process.exit(failed.length === 0 ? 0 : 1);
