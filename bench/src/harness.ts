import { hrtime } from 'node:process';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * Latencies in nanoseconds, in log-linear buckets: exact below 256 ns, then 128 buckets per
 * power of two (relative error < 0.8 %). Fixed memory and no allocation per sample, so recording
 * millions of samples does not disturb what is measured. Values are clamped to 2^32-1 ns (4.3 s).
 */
const SUB_BITS = 7;
const SUB = 1 << SUB_BITS;

export class LatencyHistogram {
  readonly #counts = new Float64Array((32 - SUB_BITS + 1) * SUB);
  count = 0;
  maxNs = 0;

  record(ns: number): void {
    const v = ns <= 0 ? 0 : ns >= 0xffffffff ? 0xffffffff : Math.floor(ns);
    this.#counts[bucketOf(v)]! += 1;
    this.count += 1;
    if (v > this.maxNs) this.maxNs = v;
  }

  /** The value below which a fraction `q` of the samples lie (bucket midpoint), in ns. */
  quantile(q: number): number {
    if (this.count === 0) return Number.NaN;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < this.#counts.length; i++) {
      seen += this.#counts[i]!;
      if (seen >= rank) return midpointOf(i);
    }
    return this.maxNs;
  }
}

function bucketOf(v: number): number {
  if (v < 2 * SUB) return v;
  const shift = 31 - Math.clz32(v) - SUB_BITS;
  return (shift + 1) * SUB + ((v >>> shift) - SUB);
}

function midpointOf(index: number): number {
  if (index < 2 * SUB) return index;
  const shift = Math.floor(index / SUB) - 1;
  const width = 2 ** shift;
  return ((index % SUB) + SUB) * width + width / 2;
}

export interface LoadOptions {
  /** Async loops running operations back to back. */
  readonly concurrency: number;
  /** Stop after this many operations in all (fixed count)... */
  readonly count?: number;
  /** ...or let each loop stop at the first operation that ends after this many ms. */
  readonly durationMs?: number;
}

export interface LoadResult {
  readonly count: number;
  readonly wallNs: number;
  /** User + system CPU of the whole process (every thread, GC helpers included), µs. */
  readonly cpuUs: number;
  readonly histogram: LatencyHistogram;
}

/** Runs `op` from `concurrency` loops and measures each call from `process.hrtime.bigint()`. */
export async function runLoad(op: () => Promise<unknown>, options: LoadOptions): Promise<LoadResult> {
  const histogram = new LatencyHistogram();
  const limit = options.count ?? Number.POSITIVE_INFINITY;
  let started = 0;
  const cpuBefore = process.cpuUsage();
  const begin = hrtime.bigint();
  const deadline =
    options.durationMs === undefined ? undefined : begin + BigInt(Math.round(options.durationMs * 1e6));
  const loop = async (): Promise<void> => {
    while (started < limit) {
      started += 1;
      const t0 = hrtime.bigint();
      await op();
      const t1 = hrtime.bigint();
      histogram.record(Number(t1 - t0));
      if (deadline !== undefined && t1 >= deadline) return;
    }
  };
  const loops: Promise<void>[] = [];
  for (let i = 0; i < options.concurrency; i++) loops.push(loop());
  await Promise.all(loops);
  const wallNs = Number(hrtime.bigint() - begin);
  const cpu = process.cpuUsage(cpuBefore);
  return { count: histogram.count, wallNs, cpuUs: cpu.user + cpu.system, histogram };
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  return n % 2 === 1 ? sorted[(n - 1) / 2]! : (sorted[n / 2 - 1]! + sorted[n / 2]!) / 2;
}

/**
 * `global.gc`, which needs `node --expose-gc`. Without the flag it is switched on at run time
 * (`v8.setFlagsFromString`), which works on Node 20+ but is not a documented guarantee, so the
 * script passes the flag and this is only a fallback (e.g. under `node --cpu-prof`).
 */
export function obtainGc(): { gc: () => void; exposed: boolean } {
  const existing = globalThis.gc;
  if (typeof existing === 'function') return { gc: () => void existing(), exposed: true };
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  return { gc, exposed: false };
}

/** Full collections until the heap stops shrinking, then `heapUsed`. */
export function settledHeap(gc: () => void): number {
  gc();
  let heap = process.memoryUsage().heapUsed;
  for (let i = 0; i < 4; i++) {
    gc();
    const next = process.memoryUsage().heapUsed;
    if (next >= heap) return next;
    heap = next;
  }
  return heap;
}
