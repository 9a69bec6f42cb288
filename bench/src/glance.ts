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

/**
 * `value` with `digits` decimals, or more where those would round it onto `limit`: a figure
 * shown as its target (`0.50` for 0.4996 against `>= 0.5`) must not read as met when it missed,
 * nor as missed when it was met.
 */
export function sharp(value: number, digits: number, limit: number): string {
  if (!Number.isFinite(value)) return '–';
  let d = digits;
  while (d < 6 && value !== limit && Number(value.toFixed(d)) === limit) d++;
  // With thousands separators, as the benchmarks' own tables print rates.
  return value.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
}

/**
 * The table of the lines in `file` (as the benchmarks wrote them), the host's line first, with
 * a row for each benchmark in `failed` (it exited before or after reporting: its targets may
 * be missing); `undefined` if there is nothing to show.
 */
export function glanceTable(file: string, failed: readonly string[] = []): string | undefined {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    // No benchmark reported anything: only the failures, if any, are shown.
  }
  const lines: GlanceLine[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    try {
      lines.push(JSON.parse(line) as GlanceLine);
    } catch {
      // A line cut short by a benchmark that was killed while writing it.
    }
  }
  for (const bench of failed)
    lines.push({ bench, row: '–', figure: 'exited with an error', target: '', ok: false });
  if (lines.length === 0) return undefined;
  const host = lines.filter((line) => line.ok === undefined);
  const judged = lines.filter((line) => line.ok !== undefined);
  const missed = judged.filter((line) => line.ok === false).length;
  const body = [...host, ...judged].map((line) => [
    line.bench,
    line.row,
    line.figure,
    line.target,
    line.ok === undefined ? '' : line.ok ? 'ok' : 'MISS',
  ]);
  const summary =
    judged.length === 0
      ? 'no targets judged'
      : missed === 0
        ? `all ${judged.length} targets met`
        : `${missed} of ${judged.length} targets missed`;
  return [
    'targets at a glance',
    table(['benchmark', 'row', 'figure', 'target', ''], ['l', 'l', 'r', 'l', 'l'], body),
    summary,
  ].join('\n');
}
