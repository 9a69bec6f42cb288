/**
 * `npm run bench`: what a root transaction with two local participants costs on MemoryStorage,
 * next to the same business calls without tcc, at concurrency 1 and 64, one transaction in five
 * cancelled; and whether the heap stays flat over 200,000 transactions. Afterwards the books must
 * be exactly what the transactions run make them, or it fails. Prints a table and saves it as
 * JSON in bench/results. `--help` lists the options.
 */
import { fileURLToPath } from 'node:url';
import { assertAudit } from './audit.js';
import { type GlanceLine, reportAtAGlance, sharp } from './glance.js';
import { type LoadOptions, type LoadResult, median, obtainGc, runLoad, settledHeap } from './harness.js';
import { parseBenchArgs } from './options.js';
import {
  type AlsTax,
  formatReport,
  type HeapCheckpoint,
  type HeapResult,
  int,
  machine,
  type Report,
  type RowResult,
  type RunStats,
  saveReport,
  type TargetResult,
} from './report.js';
import { type Mode, type Scenario, scenario, tccScenario } from './scenario.js';
import { CANCEL_ONE_IN_FIVE, type Workload } from './workload.js';

const USAGE = `usage: node --expose-gc bench/dist/core.bench.js [options]

  --quick            smoke run: short runs, 20,000-transaction heap check, nothing saved
  --only <ids>       comma-separated rows: c1-tcc, c1-plain, c64-tcc, c64-plain, heap
                     (e.g. --only c64-tcc for a profile); nothing saved
  --duration <ms>    length of one run of a row (default 3000, quick 250)
  --repeats <n>      runs per row, the median is reported (default 3, quick 1)
  --heap-tx <n>      transactions of the heap check (default 200000, quick 20000)
  --cancel-every <n> every n-th transaction is cancelled, in every row (default 5; 0: none,
                     the load of the figures before 2026-12-02)
  --save / --no-save write bench/results/core-<date>.json and core-latest.json
                     (default: save a full run, not a quick or --only one)
  --check            exit with status 1 if a target is missed
  --help`;

const CONCURRENCIES = [1, 64] as const;
const MODES: readonly Mode[] = ['tcc', 'plain'];
const ROW_IDS = CONCURRENCIES.flatMap((c) => MODES.map((m) => `c${c}-${m}`));
const ALL_IDS = [...ROW_IDS, 'heap'];

const TARGET_TX_PER_SEC = 50_000;
const TARGET_SDK_CPU_US = 20;
const TARGET_HEAP_GROWTH_PCT = 10;
const HEAP_CONCURRENCY = 64;
const HEAP_CHECKPOINTS = [10, 25, 50, 75, 100] as const;

interface Args {
  readonly quick: boolean;
  readonly only: readonly string[] | undefined;
  readonly durationMs: number;
  readonly repeats: number;
  readonly heapTransactions: number;
  /** Every row, tcc and plain alike, runs it: which transactions are cancelled. */
  readonly work: Workload;
  readonly save: boolean;
  readonly check: boolean;
}

function parse(argv: readonly string[]): Args {
  const args = parseBenchArgs(
    USAGE,
    {
      only: { type: 'string' },
      duration: { type: 'string' },
      repeats: { type: 'string' },
      'heap-tx': { type: 'string' },
      'cancel-every': { type: 'string' },
    },
    argv,
  );
  const { quick } = args;
  const only = args.values.only
    ?.split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const unknown = only?.filter((id) => !ALL_IDS.includes(id)) ?? [];
  if (unknown.length > 0)
    args.fail(`--only: unknown row ${unknown.join(', ')} (rows: ${ALL_IDS.join(', ')})`);
  return {
    quick,
    only,
    durationMs: args.positive('duration', quick ? 250 : 3000),
    repeats: args.positive('repeats', quick ? 1 : 3),
    heapTransactions: args.positive('heap-tx', quick ? 20_000 : 200_000),
    work: workOf(args.values['cancel-every'], args.fail),
    save: args.save(!quick && only === undefined),
    check: args.check,
  };
}

function workOf(given: string | undefined, fail: (message: string) => never): Workload {
  if (given === undefined) return CANCEL_ONE_IN_FIVE;
  const n = Number(given);
  if (!Number.isInteger(n) || n < 0) fail(`--cancel-every must be 0 or a positive integer, got ${given}`);
  return { cancelEvery: n };
}

const progress = (line: string): void => void process.stderr.write(`${line}\n`);

/**
 * Transactions each scenario ran, counted by the load loops (apart from the scenario's own
 * counters), for the audit after the rows.
 */
const ran = new Map<Scenario, number>();

/** One run of `s` under `options`; `cancelled`: how many of its transactions were cancelled. */
async function load(s: Scenario, options: LoadOptions): Promise<LoadResult & { cancelled: number }> {
  const cancelledBefore = s.tally.cancelled;
  const result = await runLoad(s.op, options);
  ran.set(s, (ran.get(s) ?? 0) + result.count);
  return { ...result, cancelled: s.tally.cancelled - cancelledBefore };
}

function statsOf(result: LoadResult & { cancelled: number }): RunStats {
  const { count, wallNs, cpuUs, histogram, cancelled } = result;
  return {
    transactions: count,
    cancelled,
    wallMs: wallNs / 1e6,
    txPerSec: count / (wallNs / 1e9),
    p50Us: histogram.quantile(0.5) / 1000,
    p99Us: histogram.quantile(0.99) / 1000,
    maxUs: histogram.maxNs / 1000,
    cpuUsPerTx: cpuUs / count,
  };
}

/** Cancelled ÷ transactions over all of a row's runs. */
const shareOf = (list: readonly RunStats[]): number =>
  list.reduce((a, r) => a + r.cancelled, 0) / list.reduce((a, r) => a + r.transactions, 0);

/**
 * Fails the benchmark, naming every breach, unless the scenario's books and tally are exactly
 * what the transactions the load loops ran must leave; otherwise says what was checked.
 */
function checked(label: string, s: Scenario): string {
  const total = ran.get(s) ?? 0;
  assertAudit(label, s, total);
  return (
    `${label}: ${int(s.tally.confirmed)} confirmed + ${int(s.tally.cancelled)} cancelled = ${int(total)} run;` +
    ` spent and shipped exact, account by account; nothing frozen${s.mode === 'tcc' ? '; store empty' : ''}`
  );
}

const rowName = (concurrency: number, mode: Mode): string => `memory c=${concurrency} ${mode}`;

const runLine = (label: string, name: string, stats: RunStats): string =>
  `${label.padEnd(10)}  ${name.padEnd(18)}` +
  `${Math.round(stats.txPerSec).toLocaleString('en-US').padStart(11)} tx/s` +
  `  p99 ${stats.p99Us.toFixed(1).padStart(8)} µs  cpu ${stats.cpuUsPerTx.toFixed(2)} µs/tx`;

/** Runs each scenario at each concurrency, `totalMs` in all, so the JIT has seen every path. */
async function warmUp(list: readonly Scenario[], totalMs: number): Promise<void> {
  const slice = totalMs / (list.length * CONCURRENCIES.length);
  for (const s of list) {
    for (const concurrency of CONCURRENCIES) await load(s, { concurrency, durationMs: slice });
  }
}

async function main(): Promise<void> {
  const args = parse(process.argv.slice(2));
  const started = process.hrtime.bigint();
  const { gc, exposed } = obtainGc();
  if (!exposed)
    progress('note: global.gc was not exposed (node --expose-gc); enabled it at run time instead');
  const wanted = (id: string): boolean => args.only === undefined || args.only.includes(id);
  const rowIds = ROW_IDS.filter(wanted);
  const warmupMs = args.quick ? 500 : 2000;
  const date = new Date().toISOString();
  const host = machine();

  // One long-lived environment per mode, shared by all runs: the steady state of a service.
  const scenarios = new Map<Mode, Scenario>();
  for (const mode of MODES) {
    if (rowIds.some((id) => id.endsWith(`-${mode}`))) scenarios.set(mode, scenario(mode, args.work));
  }

  // Plain first, before any transaction has run: the first `als.run` switches on Node's promise
  // hooks for the whole process, which also slows code outside transactions (the ALS tax).
  const alsTax: AlsTax[] = [];
  const plain = scenarios.get('plain');
  if (plain !== undefined) {
    progress(`warm-up plain ${warmupMs / 2} ms`);
    await warmUp([plain], warmupMs / 2);
    for (const concurrency of CONCURRENCIES) {
      if (!rowIds.includes(`c${concurrency}-plain`)) continue;
      settledHeap(gc);
      const before = statsOf(await load(plain, { concurrency, durationMs: args.durationMs / 2 }));
      alsTax.push({
        concurrency,
        before,
        cpuUsPerTx: Number.NaN,
        txPerSec: Number.NaN,
        taxUsPerTx: Number.NaN,
      });
      progress(runLine('before ALS', rowName(concurrency, 'plain'), before));
    }
  }
  // With only the heap row, a throwaway tcc environment warms the JIT up.
  const throwaway = scenarios.size === 0 && wanted('heap') ? tccScenario(undefined, args.work) : undefined;
  const warm = throwaway !== undefined ? [throwaway] : [...scenarios.values()];
  if (warm.length > 0) {
    progress(`warm-up ${warmupMs} ms`);
    await warmUp(warm, warmupMs);
  }
  await throwaway?.close();

  const runs = new Map<string, RunStats[]>(rowIds.map((id) => [id, []]));
  for (let rep = 0; rep < args.repeats; rep++) {
    for (const concurrency of CONCURRENCIES) {
      // tcc first on even repeats, plain first on odd ones: neither always runs on a warmer machine.
      const modes = rep % 2 === 0 ? MODES : [...MODES].reverse();
      for (const mode of modes) {
        const id = `c${concurrency}-${mode}`;
        const s = scenarios.get(mode);
        const bucket = runs.get(id);
        if (s === undefined || bucket === undefined) continue;
        settledHeap(gc);
        const stats = statsOf(await load(s, { concurrency, durationMs: args.durationMs }));
        bucket.push(stats);
        progress(runLine(`run ${rep + 1}/${args.repeats}`, rowName(concurrency, mode), stats));
      }
    }
  }
  const checks: string[] = [];
  for (const [mode, s] of scenarios) {
    checks.push(checked(`${mode} rows`, s));
    await s.close();
  }
  scenarios.clear();

  const rows: RowResult[] = [];
  for (const id of rowIds) {
    const list = runs.get(id) ?? [];
    const [c, mode] = id.slice(1).split('-') as [string, Mode];
    const concurrency = Number(c);
    rows.push({
      id,
      name: rowName(concurrency, mode),
      storage: 'memory',
      concurrency,
      mode,
      txPerSec: median(list.map((r) => r.txPerSec)),
      p50Us: median(list.map((r) => r.p50Us)),
      p99Us: median(list.map((r) => r.p99Us)),
      cpuUsPerTx: median(list.map((r) => r.cpuUsPerTx)),
      cancelShare: shareOf(list),
      ratio: undefined,
      sdkCpuUsPerTx: undefined,
      runs: list,
    });
  }
  for (const row of rows) {
    const plain = rows.find((r) => r.mode === 'plain' && r.concurrency === row.concurrency);
    if (row.mode !== 'tcc' || plain === undefined) continue;
    row.ratio = plain.txPerSec / row.txPerSec;
    row.sdkCpuUsPerTx = row.cpuUsPerTx - plain.cpuUsPerTx;
  }

  for (const tax of alsTax) {
    const after = rows.find((r) => r.mode === 'plain' && r.concurrency === tax.concurrency);
    if (after === undefined) continue;
    tax.cpuUsPerTx = after.cpuUsPerTx;
    tax.txPerSec = after.txPerSec;
    tax.taxUsPerTx = after.cpuUsPerTx - tax.before.cpuUsPerTx;
  }

  const heap = wanted('heap') ? await heapCheck(args.heapTransactions, args.work, gc, checks) : undefined;

  const targets: TargetResult[] = [];
  for (const row of rows) {
    if (row.mode !== 'tcc') continue;
    if (row.concurrency === 64) {
      targets.push({
        what: 'throughput',
        row: row.name,
        value: row.txPerSec,
        unit: 'tx/s',
        figure: `${sharp(row.txPerSec, 0, TARGET_TX_PER_SEC)} tx/s`,
        limit: `>= ${TARGET_TX_PER_SEC.toLocaleString('en-US')} tx/s`,
        ok: row.txPerSec >= TARGET_TX_PER_SEC,
      });
    }
    if (row.sdkCpuUsPerTx !== undefined) {
      targets.push({
        what: 'SDK CPU',
        row: row.name,
        value: row.sdkCpuUsPerTx,
        unit: 'µs/tx',
        figure: `${sharp(row.sdkCpuUsPerTx, 2, TARGET_SDK_CPU_US)} µs/tx`,
        limit: `SDK <= ${TARGET_SDK_CPU_US} µs`,
        ok: row.sdkCpuUsPerTx <= TARGET_SDK_CPU_US,
      });
    }
  }
  if (heap !== undefined) {
    targets.push({
      what: 'heap growth',
      row: heap.name,
      value: heap.growthPct,
      unit: '%',
      figure: `${sharp(heap.growthPct, 2, TARGET_HEAP_GROWTH_PCT)} %`,
      limit: `< ${TARGET_HEAP_GROWTH_PCT} %`,
      ok: heap.growthPct < TARGET_HEAP_GROWTH_PCT,
    });
  }

  const report: Report = {
    benchmark: 'core',
    date,
    machine: host,
    settings: {
      quick: args.quick,
      only: args.only,
      durationMs: args.durationMs,
      repeats: args.repeats,
      warmupMs,
      heapTransactions: args.heapTransactions,
      cancelEvery: args.work.cancelEvery,
      gcExposed: exposed,
    },
    rows,
    alsTax,
    heap,
    checks,
    targets,
    durationSec: Number(process.hrtime.bigint() - started) / 1e9,
  };
  console.log(`\n${formatReport(report)}`);
  reportAtAGlance(glanceOf(rows, targets));
  if (args.save) {
    const dir = fileURLToPath(new URL('../results/', import.meta.url));
    const files = await saveReport(dir, report);
    console.log(`saved ${files.join(', ')}`);
  }
  if (args.check && targets.some((t) => !t.ok)) process.exitCode = 1;
}

/** The targets for `npm run bench`'s table, after the plain calls at c=64: the host's speed. */
function glanceOf(rows: readonly RowResult[], targets: readonly TargetResult[]): GlanceLine[] {
  const lines: GlanceLine[] = [];
  const plain = rows.find((r) => r.mode === 'plain' && r.concurrency === 64);
  if (plain !== undefined) {
    lines.push({
      bench: 'core',
      row: `${plain.name} (the host)`,
      figure: `${int(plain.txPerSec)} tx/s`,
      target: '',
    });
  }
  for (const t of targets)
    lines.push({ bench: 'core', row: t.row, figure: t.figure, target: t.limit, ok: t.ok });
  return lines;
}

/**
 * 200,000 transactions at concurrency 64 on a fresh Tcc and store, paused at each checkpoint
 * (all loops idle, so nothing in flight is counted) for full collections and `heapUsed`.
 */
async function heapCheck(
  transactions: number,
  work: Workload,
  gc: () => void,
  checks: string[],
): Promise<HeapResult> {
  const s = tccScenario(undefined, work);
  const checkpoints: HeapCheckpoint[] = [];
  let done = 0;
  let wallNs = 0;
  for (const percent of HEAP_CHECKPOINTS) {
    const until = Math.round((transactions * percent) / 100);
    if (until > done) {
      const result = await load(s, { concurrency: HEAP_CONCURRENCY, count: until - done });
      done += result.count;
      wallNs += result.wallNs;
    }
    const heapUsedBytes = settledHeap(gc);
    checkpoints.push({ percent, transactions: done, heapUsedBytes });
    progress(
      `heap  ${String(percent).padStart(3)} %  ${done.toLocaleString('en-US').padStart(9)} tx  ${(heapUsedBytes / 2 ** 20).toFixed(2)} MB`,
    );
  }
  const storedRecordsAtEnd = s.storedRecords() ?? 0;
  checks.push(checked('heap run', s));
  const cancelShare = s.tally.cancelled / done;
  await s.close();
  const first = checkpoints[0]!.heapUsedBytes;
  const last = checkpoints[checkpoints.length - 1]!.heapUsedBytes;
  return {
    id: 'heap',
    name: `memory c=${HEAP_CONCURRENCY} tcc ${Math.round(transactions / 1000)}k`,
    transactions: done,
    concurrency: HEAP_CONCURRENCY,
    checkpoints,
    growthPct: ((last - first) / first) * 100,
    txPerSec: done / (wallNs / 1e9),
    cancelShare,
    storedRecordsAtEnd,
  };
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
