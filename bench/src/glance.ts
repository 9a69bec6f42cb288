/**
 * The targets at a glance: every benchmark hands `npm run bench` (all.ts) its targets, and the
 * figure each one was judged on, so that one table after the last benchmark shows them all,
 * beside a figure of the host's own speed. Rates depend on the host (this machine is a shared
 * VM whose speed changes by 2× from one hour to the next), so the table carries the plain
 * calls' rate of the same run to read them against.
 *
 * A benchmark run alone (`node bench/dist/<name>.bench.js`) prints its own targets as before;
 * the lines only travel when all.ts names a file for them in `TCC_BENCH_GLANCE`.
 */
import { appendFileSync, readFileSync } from 'node:fs';
import { table } from './report.js';

/** One target, or (`ok` left out) a reference figure with no target. */
export interface GlanceLine {
  readonly bench: string;
  readonly row: string;
  /** The figure judged, with its unit: `24,687 tx/s`, `0.86 of limit`. */
  readonly figure: string;
  /** The target it was judged against: `>= 50,000 tx/s`; `''` for a reference figure. */
  readonly target: string;
  readonly ok?: boolean;
}

/** The environment variable that names the file the lines go to. */
export const GLANCE_FILE_ENV = 'TCC_BENCH_GLANCE';

/** Hands `lines` to `npm run bench`, if it asked for them (see the module). */
export function reportAtAGlance(lines: readonly GlanceLine[]): void {
  const file = process.env[GLANCE_FILE_ENV];
  if (file === undefined || file === '') return;
  appendFileSync(file, lines.map((line) => `${JSON.stringify(line)}\n`).join(''));
}

/** The table of the lines in `file` (as the benchmarks wrote them), or `undefined` if there are none. */
export function glanceTable(file: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  const lines = text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as GlanceLine);
  if (lines.length === 0) return undefined;
  const judged = lines.filter((line) => line.ok !== undefined);
  const missed = judged.filter((line) => line.ok === false).length;
  const body = lines.map((line) => [
    line.bench,
    line.row,
    line.figure,
    line.target,
    line.ok === undefined ? '' : line.ok ? 'ok' : 'MISS',
  ]);
  return [
    'targets at a glance',
    table(['benchmark', 'row', 'figure', 'target', ''], ['l', 'l', 'r', 'l', 'l'], body),
    missed === 0 ? `all ${judged.length} targets met` : `${missed} of ${judged.length} targets missed`,
  ].join('\n');
}
