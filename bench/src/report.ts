import { mkdir, rename, writeFile } from 'node:fs/promises';
import { arch, cpus, loadavg, platform, release, totalmem, type } from 'node:os';
import { join } from 'node:path';
import type { Mode } from './scenario.js';

export interface RunStats {
  readonly transactions: number;
  /** Of which cancelled (the workload's share: their second try failed). */
  readonly cancelled: number;
  readonly wallMs: number;
  readonly txPerSec: number;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly maxUs: number;
  readonly cpuUsPerTx: number;
}

export interface RowResult {
  /** `c64-tcc`: what `--only` takes. */
  readonly id: string;
  /** `memory c=64 tcc`: what the table shows. */
  readonly name: string;
  readonly storage: 'memory';
  readonly concurrency: number;
  readonly mode: Mode;
  /** Medians over `runs`, each metric on its own. */
  readonly txPerSec: number;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly cpuUsPerTx: number;
  /** Cancelled ÷ transactions over all runs. */
  readonly cancelShare: number;
  /** Time per transaction relative to plain at the same concurrency (plain tx/s ÷ this tx/s). */
  ratio: number | undefined;
  /** tcc CPU µs/tx − plain CPU µs/tx: what the SDK itself costs per transaction. */
  sdkCpuUsPerTx: number | undefined;
  readonly runs: readonly RunStats[];
}

/**
 * What enabling AsyncLocalStorage costs code outside any transaction: the plain row measured
 * before the first transaction ran (promise hooks off) and after (on, as in the plain row).
 */
export interface AlsTax {
  readonly concurrency: number;
  /** One run (half the usual length) of the plain row before any `als.run`. */
  readonly before: RunStats;
  /** The plain row's medians (promise hooks on). */
  cpuUsPerTx: number;
  txPerSec: number;
  /** cpuUsPerTx − before.cpuUsPerTx. */
  taxUsPerTx: number;
}

export interface HeapCheckpoint {
  readonly percent: number;
  readonly transactions: number;
  readonly heapUsedBytes: number;
}

export interface HeapResult {
  readonly id: 'heap';
  readonly name: string;
  readonly transactions: number;
  readonly concurrency: number;
  readonly checkpoints: readonly HeapCheckpoint[];
  /** heapUsed at 100 % vs at 10 %, after full collections. */
  readonly growthPct: number;
  readonly txPerSec: number;
  /** Cancelled ÷ transactions. */
  readonly cancelShare: number;
  /** Records the store still held at the end (must be 0: every root is deleted when confirmed). */
  readonly storedRecordsAtEnd: number;
}

export interface TargetResult {
  readonly what: string;
  readonly row: string;
  readonly value: number;
  readonly unit: string;
  /** `value` with its unit, never rounded onto the limit (`sharp`). */
  readonly figure: string;
  readonly limit: string;
  readonly ok: boolean;
}

export interface Machine {
  readonly node: string;
  readonly v8: string;
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly os: string;
  readonly loadAverageAtStart: readonly number[];
}

export interface Settings {
  readonly quick: boolean;
  readonly only: readonly string[] | undefined;
  readonly durationMs: number;
  readonly repeats: number;
  readonly warmupMs: number;
  readonly heapTransactions: number;
  /** Every n-th transaction cancelled (0: none). */
  readonly cancelEvery: number;
  readonly gcExposed: boolean;
}

export interface Report {
  readonly benchmark: 'core';
  readonly date: string;
  readonly machine: Machine;
  readonly settings: Settings;
  readonly rows: readonly RowResult[];
  readonly alsTax: readonly AlsTax[];
  readonly heap: HeapResult | undefined;
  /** What the audits after the rows and the heap run verified (a breach fails the run instead). */
  readonly checks: readonly string[];
  readonly targets: readonly TargetResult[];
  readonly durationSec: number;
}

export function machine(): Machine {
  const list = cpus();
  return {
    node: process.version,
    v8: process.versions.v8,
    cpu: list[0]?.model.trim() ?? 'unknown',
    cores: list.length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    os: `${type()} ${release()} ${platform()}-${arch()}`,
    loadAverageAtStart: loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

// ---------------------------------------------------------------------------------------------
// text

export const int = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '–');
export const fixed = (n: number | undefined, digits = 1): string =>
  n === undefined || !Number.isFinite(n) ? '–' : n.toFixed(digits);
const mb = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(2)} MB`;
const percent = (share: number): string => (Number.isFinite(share) ? `${(share * 100).toFixed(1)} %` : '–');
export const verdict = (ok: boolean): string => (ok ? 'ok' : 'MISS');

export type Align = 'l' | 'r';

/** A plain-text table; `align` per column, the last left-aligned column is not padded. */
export function table(
  header: readonly string[],
  align: readonly Align[],
  rows: readonly (readonly string[])[],
): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => {
        const w = widths[i] ?? 0;
        // The last column is left free so that long notes do not pad every line.
        if (i === cells.length - 1 && align[i] === 'l') return c;
        return align[i] === 'r' ? c.padStart(w) : c.padEnd(w);
      })
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

export function formatReport(report: Report): string {
  const { machine: m, settings: s } = report;
  const out: string[] = [];
  out.push(
    `tcc core benchmark  ${report.date}`,
    `node ${m.node} (V8 ${m.v8}) | ${m.cpu} x ${m.cores} | ${m.os} | load ${m.loadAverageAtStart.join(' ')}`,
    `each row: median of ${s.repeats} runs of ${s.durationMs / 1000} s, tcc and plain alternating` +
      ` | warm-up ${s.warmupMs / 1000} s${s.quick ? ' | QUICK (smoke run, figures are rough)' : ''}`,
    '',
  );

  const targetsByRow = new Map<string, TargetResult[]>();
  for (const t of report.targets) targetsByRow.set(t.row, [...(targetsByRow.get(t.row) ?? []), t]);
  const note = (row: string): string =>
    (targetsByRow.get(row) ?? []).map((t) => `${t.limit}: ${verdict(t.ok)}`).join(', ');

  if (report.rows.length > 0) {
    out.push(
      table(
        ['row', 'tx/s', 'p50 µs', 'p99 µs', 'CPU µs/tx', 'cancelled', 'tcc/plain', 'SDK µs/tx', 'target'],
        ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'l'],
        report.rows.map((r) => [
          r.name,
          int(r.txPerSec),
          fixed(r.p50Us),
          fixed(r.p99Us),
          fixed(r.cpuUsPerTx, 2),
          percent(r.cancelShare),
          r.mode === 'plain' ? '1.00x' : r.ratio === undefined ? '–' : `${r.ratio.toFixed(2)}x`,
          fixed(r.sdkCpuUsPerTx, 2),
          note(r.name),
        ]),
      ),
    );
  }

  const taxes = report.alsTax.filter((t) => Number.isFinite(t.taxUsPerTx));
  if (taxes.length > 0) {
    out.push(
      '',
      table(
        ['ALS tax on code outside tcc', 'CPU µs/tx before', 'after', 'tax µs/tx', 'tx/s before', 'after'],
        ['l', 'r', 'r', 'r', 'r', 'r'],
        taxes.map((t) => [
          `memory c=${t.concurrency} plain`,
          fixed(t.before.cpuUsPerTx, 2),
          fixed(t.cpuUsPerTx, 2),
          `${t.taxUsPerTx >= 0 ? '+' : ''}${fixed(t.taxUsPerTx, 2)}`,
          int(t.before.txPerSec),
          int(t.txPerSec),
        ]),
      ),
    );
  }

  const h = report.heap;
  if (h !== undefined) {
    const at = (p: number) => h.checkpoints.find((c) => c.percent === p)?.heapUsedBytes ?? Number.NaN;
    out.push(
      '',
      table(
        [
          'heap',
          'tx',
          'tx/s',
          'cancelled',
          'heap at 10%',
          'heap at 100%',
          'growth',
          'left in store',
          'target',
        ],
        ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'l'],
        [
          [
            h.name,
            int(h.transactions),
            int(h.txPerSec),
            percent(h.cancelShare),
            mb(at(10)),
            mb(at(100)),
            `${h.growthPct >= 0 ? '+' : ''}${h.growthPct.toFixed(2)} %`,
            int(h.storedRecordsAtEnd),
            note(h.name),
          ],
        ],
      ),
    );
  }

  if (report.checks.length > 0) out.push('', ...report.checks.map((c) => `checked ${c}`));
  if (report.targets.length > 0) {
    const missed = report.targets.filter((t) => !t.ok);
    out.push(
      '',
      missed.length === 0
        ? `targets: all ${report.targets.length} met`
        : `targets: ${missed.length} of ${report.targets.length} MISSED: ` +
            missed.map((t) => `${t.row} ${t.what} ${fixed(t.value, 2)} ${t.unit} (${t.limit})`).join('; '),
    );
  }
  out.push(
    'SDK µs/tx = tcc CPU µs/tx - plain CPU µs/tx at the same concurrency; tcc/plain = plain tx/s / tcc tx/s.',
    'cancelled: transactions whose reservation was sold out (one in five, tcc and plain alike), cancelled.',
    ...(taxes.length > 0
      ? [
          'ALS tax: the plain row before the first transaction (1 short run) vs after (promise hooks on for the' +
            ' whole process); SDK µs/tx does not include it.',
        ]
      : []),
    `total ${report.durationSec.toFixed(1)} s`,
  );
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------
// JSON

/** Writes `core-<date>.json` and `core-latest.json` (through a .tmp file and a rename). */
export function saveReport(dir: string, report: Report): Promise<string[]> {
  return saveResults(dir, 'core', report.date, report);
}

/**
 * Writes `<name>-<date>.json` and `<name>-latest.json` in `dir`, each through a .tmp file and a
 * rename so that a killed run never leaves half a file.
 */
export async function saveResults(dir: string, name: string, date: string, data: unknown): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const text = `${JSON.stringify(data, null, 2)}\n`;
  const stamp = date.replace(/\.\d+Z$/, 'Z').replaceAll(':', '-');
  const files = [join(dir, `${name}-${stamp}.json`), join(dir, `${name}-latest.json`)];
  for (const file of files) {
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, text);
    await rename(tmp, file);
  }
  return files;
}
