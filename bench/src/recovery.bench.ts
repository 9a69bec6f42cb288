/**
 * `npm run bench -- recovery`: records recovered per second when BullMQ recovery workers drain
 * 10,000 stuck transactions (CONFIRMING, one participant), with 1 and with 3 worker processes;
 * and what one scan costs with and without finished transactions kept for retention. Each drain
 * must confirm every record exactly once within a time limit, or the benchmark fails.
 * `--help` lists the options.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { JsonCodec, type TransactionRecord } from '@tcc/core';
import { RedisStorage } from '@tcc/storage-redis';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { checkEffects, type Effects, parseEffects } from './effects.js';
import { reportAtAGlance, sharp } from './glance.js';
import { median } from './harness.js';
import { parseBenchArgs } from './options.js';
import { int, machine, saveResults, table } from './report.js';

const USAGE = `usage: node bench/dist/recovery.bench.js [options]

  --quick            smoke run: 500 records, 1 repeat, nothing saved
  --records <n>      stuck transactions to drain per run (default 10000)
  --repeats <n>      runs per row, the median is reported (default 3)
  --concurrency <n>  jobs per worker process (default 64)
  --workers <list>   worker processes of each row (default 1,3)
  --batch-size <n>   the workers' batchSize: findStuck page and addBulk size (default 1000)
  --same-time        stuck records all last written in the same millisecond (default: 1 ms
                     apart); ties in the stuck index make RedisStorage.findStuck re-read them
  --commands         also print the Redis commands per record, by command
  --profile <dir>    run the worker processes with node --cpu-prof, profiles written to <dir>
  --time-limit <s>   a drain that has not emptied the store by then fails (default 60 s +
                     10 ms per record: 160 s for 10,000, 25 times slower than the target)
  --save / --no-save write bench/results/recovery-<date>.json and recovery-latest.json
                     (default: save a full run, not a quick one)
  --check            exit with status 1 if a target is missed (>= 5,000 records/s, 1 worker)
  --help

Checks, or exits 1: every record's business confirm ran exactly once (counted per record
over all worker processes) and no cancel ran; each drain ends within the time limit.

Needs Redis at REDIS_URL (default redis://127.0.0.1:6379); keys under tcc-bench-recovery:<pid>:.
Per record: CPU time of the worker processes, and Redis's commands (INFO commandstats, the
bench's own polling taken out) and CPU time; Redis-wide, so use a Redis nothing else uses.`;

const TARGET_PER_SEC = 5_000;
const here = fileURLToPath(new URL('.', import.meta.url));
const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

const args = parseBenchArgs(USAGE, {
  records: { type: 'string' },
  repeats: { type: 'string' },
  concurrency: { type: 'string' },
  workers: { type: 'string' },
  'batch-size': { type: 'string' },
  'same-time': { type: 'boolean' },
  commands: { type: 'boolean' },
  profile: { type: 'string' },
  'time-limit': { type: 'string' },
});
const { values, quick } = args;
const records = args.positive('records', quick ? 500 : 10_000);
const repeats = args.positive('repeats', quick ? 1 : 3);
const concurrency = args.positive('concurrency', 64);
const batchSize = args.positive('batch-size', 1_000);
const sameTime = values['same-time'] === true;
const workerCounts = (values.workers ?? '1,3').split(',').map(Number);
if (!workerCounts.every((n) => Number.isInteger(n) && n > 0))
  args.fail('--workers must be positive integers separated by commas');
const save = args.save(!quick);
const timeLimitSec = args.positive('time-limit', 60 + Math.ceil(records / 100));
/** How long a worker process may take to start (connect, load scripts) before the run fails. */
const READY_LIMIT_MS = 60_000;

const base = `tcc-bench-recovery:${process.pid}:`;
const admin = new Redis(url, { maxRetriesPerRequest: 3, enableAutoPipelining: true });
const queueClient = new Redis(url, { maxRetriesPerRequest: null });
const codec = new JsonCodec();
let run = 0;

const stuckXid = (drainRun: number, i: number): string => `stuck-${drainRun}-${i}`;

/** Creates `n` records of domain bench in `status`, last written a minute ago and before. */
async function fill(storage: RedisStorage, n: number, status: 'CONFIRMING' | 'CONFIRMED'): Promise<void> {
  const at = Date.now() - 60_000;
  for (let from = 0; from < n; from += 1_000) {
    const batch: Promise<void>[] = [];
    for (let i = from; i < Math.min(n, from + 1_000); i++) {
      const xid = status === 'CONFIRMED' ? `done-${run}-${i}` : stuckXid(run, i);
      const record: TransactionRecord = {
        globalId: xid,
        xid,
        domain: 'bench',
        rootDomain: 'bench',
        type: 'ROOT',
        status,
        participants: [
          {
            id: 'p1',
            kind: 'local',
            target: 'bench.pay',
            confirm: 'confirm',
            cancel: 'cancel',
            args: codec.encode([i]),
            status: 'TRYING',
          },
        ],
        attachments: {},
        retries: 0,
        version: 1,
        // 1 ms apart, as a crash leaves them; --same-time writes them all in one millisecond.
        createdAt: sameTime ? at : at - i,
        updatedAt: sameTime ? at : at - i,
        deadline: at + 1_000,
        dueAt: sameTime ? at : at - i,
        ...(status === 'CONFIRMED' ? { expiresAt: Date.now() + 3_600_000 } : {}),
      };
      batch.push(storage.create(record));
    }
    await Promise.all(batch);
  }
}

interface StartedWorker {
  readonly child: ChildProcess;
  readonly ready: Promise<void>;
  /** CPU time from READY to exit, µs. */
  readonly cpuUs: Promise<number>;
  /** When its scan ended (epoch ms), if it ran one. */
  readonly scannedAt: Promise<number | undefined>;
  /** The confirms and cancels its participant ran, told as it exits. */
  readonly effects: Promise<Effects>;
}

function startWorker(prefix: string): StartedWorker {
  const profile = values.profile === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${values.profile}`];
  const child = spawn(process.execPath, [...profile, `${here}recovery-worker.js`], {
    env: {
      ...process.env,
      BENCH_PREFIX: prefix,
      REDIS_URL: url,
      BENCH_CONCURRENCY: String(concurrency),
      BENCH_BATCH_SIZE: String(batchSize),
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('READY')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`worker exited (${code}) before it was ready`)));
  });
  // The worker prints `CPU <µs>` (from READY to closed) and its effects as it exits; `close`,
  // not `exit`: the whole of its output has been read then.
  const closed = once(child, 'close');
  const cpuUs = closed.then(() => Number(/CPU (\d+)/.exec(out)?.[1] ?? Number.NaN));
  const scannedAt = closed.then(() => {
    const at = /SCANNED (\d+)/.exec(out)?.[1];
    return at === undefined ? undefined : Number(at);
  });
  const effects = closed.then(() => parseEffects(out));
  return { child, ready, cpuUs, scannedAt, effects };
}

/** Redis's command counts (`INFO commandstats`, without INFO itself) and its CPU time in µs. */
async function redisStats(): Promise<{ calls: Map<string, number>; cpuUs: number }> {
  const [commandstats, cpu] = await Promise.all([admin.info('commandstats'), admin.info('cpu')]);
  const calls = new Map<string, number>();
  for (const [, name, n] of commandstats.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    if (name !== 'info') calls.set(name!, Number(n));
  }
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(cpu)?.[1] ?? 0);
  return { calls, cpuUs: (field('used_cpu_user') + field('used_cpu_sys')) * 1e6 };
}

function callsBetween(before: Map<string, number>, after: Map<string, number>): Map<string, number> {
  const delta = new Map<string, number>();
  for (const [name, n] of after) {
    const d = n - (before.get(name) ?? 0);
    if (d > 0) delta.set(name, d);
  }
  return delta;
}

const total = (calls: Map<string, number>) => [...calls.values()].reduce((a, b) => a + b, 0);

interface Drain {
  readonly perSec: number;
  /** CPU time of the worker processes (all of them) per record, µs. */
  readonly workerCpuUs: number;
  /** Redis commands (Lua's inner calls included, the bench's own polling taken out) per record. */
  readonly redisCommands: number;
  /** Redis CPU time per record, µs (the bench's polling included: a few %). */
  readonly redisCpuUs: number;
  /** From resume to the end of the scan (findStuck pages and addBulk), ms. */
  readonly scanMs: number;
  /** Records whose business confirm ran exactly once (the drain fails unless that is all of them). */
  readonly confirmedOnce: number;
  readonly commands: Record<string, number>;
}

/**
 * One drain: `records` stuck records, `workers` processes; records/s, and the work per record.
 * Redis figures are Redis-wide: run on a Redis nothing else uses (REDIS_URL) for clean ones.
 */
async function drain(workers: number): Promise<Drain> {
  run++;
  const drainRun = run;
  const prefix = `${base}${run}:`;
  const storage = new RedisStorage({ client: admin, prefix });
  await fill(storage, records, 'CONFIRMING');
  // Paused until every worker is ready, so process start-up is not in the measure; the scan is.
  const queue = new Queue('tcc-recovery-bench', { connection: queueClient, prefix: `${prefix}{q}` });
  await queue.pause();
  const started = Array.from({ length: workers }, () => startWorker(prefix));
  const label = `drain with ${workers} worker process${workers > 1 ? 'es' : ''}`;
  try {
    await within(
      Promise.all(started.map((w) => w.ready)),
      READY_LIMIT_MS,
      () => `${label}: the workers were not ready after ${READY_LIMIT_MS / 1_000} s`,
    );
    // What one poll of the record count costs Redis, taken out of the command count below.
    const p0 = await redisStats();
    await storage.count({ domain: 'bench' });
    const pollCalls = callsBetween(p0.calls, (await redisStats()).calls);
    const before = await redisStats();
    const t0 = performance.now();
    const resumedAt = Date.now();
    await queue.resume();
    let polls = 1;
    let left = await storage.count({ domain: 'bench' });
    while (left > 0) {
      // A drain that stalls must fail, not hang: a run that did not finish measured nothing.
      if (performance.now() - t0 > timeLimitSec * 1_000) {
        throw new Error(
          `${label}: ${int(left)} of ${int(records)} records still stuck after the time limit of ` +
            `${timeLimitSec} s (--time-limit)`,
        );
      }
      await new Promise((r) => setTimeout(r, 20));
      polls++;
      left = await storage.count({ domain: 'bench' });
    }
    const seconds = (performance.now() - t0) / 1_000;
    const after = await redisStats();
    for (const { child } of started) child.kill('SIGTERM');
    const cpus = await Promise.all(started.map((w) => w.cpuUs));
    const scannedAt = (await Promise.all(started.map((w) => w.scannedAt))).find((at) => at !== undefined);
    const effects = await Promise.all(started.map((w) => w.effects));
    const problems = checkEffects(records, (i) => stuckXid(drainRun, i), effects);
    if (problems.length > 0) throw new Error(`${label}: ${problems.join('; ')}`);
    const calls = callsBetween(before.calls, after.calls);
    for (const [name, n] of pollCalls) calls.set(name, (calls.get(name) ?? 0) - n * polls);
    const commands: Record<string, number> = {};
    for (const [name, n] of [...calls].sort((a, b) => b[1] - a[1])) {
      if (n / records >= 0.005) commands[name] = round2(n / records);
    }
    return {
      perSec: records / seconds,
      workerCpuUs: cpus.reduce((a, b) => a + b, 0) / records,
      redisCommands: total(calls) / records,
      redisCpuUs: (after.cpuUs - before.cpuUs) / records,
      scanMs: scannedAt === undefined ? Number.NaN : scannedAt - resumedAt,
      confirmedOnce: records,
      commands,
    };
  } finally {
    // After a failure the workers may still hold jobs: they are stopped, not drained.
    for (const { child } of started) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    await queue.obliterate({ force: true }).catch(() => {});
    await queue.close();
    await clear(prefix);
  }
}

/** `promise`, or a rejection with `message()` once `ms` have passed. */
async function within<T>(promise: Promise<T>, ms: number, message: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message())), ms);
  });
  try {
    return await Promise.race([promise, limit]);
  } finally {
    clearTimeout(timer);
  }
}

const round2 = (n: number) => Math.round(n * 100) / 100;

/** Time of one full scan (findStuck pages of 1,000) over `stuck` records, next to `finished` tombstones. */
async function scanCost(stuck: number, finished: number): Promise<number> {
  run++;
  const prefix = `${base}${run}:`;
  const storage = new RedisStorage({ client: admin, prefix });
  await fill(storage, stuck, 'CONFIRMING');
  await fill(storage, finished, 'CONFIRMED');
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    let cursor: string | undefined;
    let found = 0;
    do {
      const page = await storage.findStuck({
        domain: 'bench',
        dueBefore: Date.now() - 1_000,
        limit: 1_000,
        ...(cursor === undefined ? {} : { cursor }),
      });
      found += page.records.length;
      cursor = page.cursor;
    } while (cursor !== undefined);
    times.push(performance.now() - t0);
    if (found !== stuck) throw new Error(`scan found ${found} of ${stuck} stuck records`);
  }
  await clear(prefix);
  return median(times);
}

async function clear(prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await admin.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1_000);
    cursor = next;
    if (keys.length > 0) await admin.unlink(...keys);
  } while (cursor !== '0');
}

const date = new Date().toISOString();
const began = performance.now();
const rows: {
  name: string;
  workers: number;
  runs: number[];
  median: number;
  workerCpuUsPerRecord: number;
  redisCommandsPerRecord: number;
  redisCpuUsPerRecord: number;
  scanMs: number;
  /** Per run: records whose business confirm ran exactly once (all of them, or the run failed). */
  confirmedOnce: number[];
  commandsPerRecord: Record<string, number>;
}[] = [];
try {
  for (const workers of workerCounts) {
    const drains: Drain[] = [];
    for (let i = 0; i < repeats; i++) drains.push(await drain(workers));
    const runs = drains.map((d) => d.perSec);
    const middle = drains.find((d) => d.perSec === median(runs)) ?? drains[0]!;
    rows.push({
      name: `drain ${int(records)} stuck, ${workers} worker process${workers > 1 ? 'es' : ''}`,
      workers,
      runs,
      median: median(runs),
      workerCpuUsPerRecord: median(drains.map((d) => d.workerCpuUs)),
      redisCommandsPerRecord: median(drains.map((d) => d.redisCommands)),
      redisCpuUsPerRecord: median(drains.map((d) => d.redisCpuUs)),
      scanMs: median(drains.map((d) => d.scanMs)),
      confirmedOnce: drains.map((d) => d.confirmedOnce),
      commandsPerRecord: middle.commands,
    });
  }
  const stuck = quick ? 200 : 1_000;
  const finished = quick ? 2_000 : 20_000;
  const scans = {
    stuck,
    finished,
    withoutFinishedMs: await scanCost(stuck, 0),
    withFinishedMs: await scanCost(stuck, finished),
  };
  const one = rows.find((r) => r.workers === 1);
  const targets =
    one === undefined
      ? []
      : [
          {
            what: `1 worker >= ${int(TARGET_PER_SEC)} records/s`,
            row: one.name,
            ok: one.median >= TARGET_PER_SEC,
            value: one.median,
          },
        ];
  reportAtAGlance(
    targets.map((t) => ({
      bench: 'recovery',
      row: t.row,
      figure: `${sharp(t.value, 0, TARGET_PER_SEC)} records/s`,
      target: `>= ${int(TARGET_PER_SEC)} records/s`,
      ok: t.ok,
    })),
  );
  const m = machine();
  console.log(`tcc recovery benchmark  ${date}`);
  console.log(
    `node ${m.node} | ${m.cpu} x ${m.cores} | ${m.os} | load ${m.loadAverageAtStart.join(' ')} | concurrency ${concurrency}/worker, batchSize ${batchSize}${sameTime ? ', same-time' : ''}, ${repeats} run(s) per row, median`,
  );
  console.log('');
  console.log(
    table(
      [
        'row',
        'records/s (median)',
        'runs',
        'worker CPU µs/rec',
        'Redis cmds/rec',
        'Redis CPU µs/rec',
        'scan ms',
        'target',
      ],
      ['l', 'r', 'l', 'r', 'r', 'r', 'r', 'l'],
      rows.map((r) => [
        r.name,
        int(r.median),
        r.runs.map(int).join(' / '),
        int(r.workerCpuUsPerRecord),
        r.redisCommandsPerRecord.toFixed(1),
        int(r.redisCpuUsPerRecord),
        int(r.scanMs),
        r.workers === 1 ? `>= ${int(TARGET_PER_SEC)}: ${r.median >= TARGET_PER_SEC ? 'ok' : 'MISS'}` : '',
      ]),
    ),
  );
  const drained = rows.reduce((sum, r) => sum + r.runs.length, 0);
  console.log(
    `\nchecked: in each of the ${drained} drains every one of the ${int(records)} records was confirmed exactly once` +
      ` (counted per record over the worker processes) and none cancelled; each drained within ${timeLimitSec} s`,
  );
  if (values.commands) {
    for (const r of rows) {
      const list = Object.entries(r.commandsPerRecord).map(([name, n]) => `${name} ${n}`);
      console.log(`\nRedis commands per record, ${r.name}: ${list.join(', ')}`);
    }
  }
  console.log('');
  console.log(
    table(
      ['scan (findStuck, pages of 1,000)', 'stuck', 'finished kept', 'ms (median of 5)'],
      ['l', 'r', 'r', 'r'],
      [
        ['without retention', int(stuck), '0', scans.withoutFinishedMs.toFixed(1)],
        ['with retention', int(stuck), int(finished), scans.withFinishedMs.toFixed(1)],
      ],
    ),
  );
  const durationSec = (performance.now() - began) / 1_000;
  console.log(`\ntotal ${durationSec.toFixed(1)} s`);
  if (save) {
    const files = await saveResults(
      fileURLToPath(new URL('../results/', import.meta.url)),
      'recovery',
      date,
      {
        benchmark: 'recovery',
        date,
        machine: m,
        settings: {
          records,
          repeats,
          concurrency,
          batchSize,
          workers: workerCounts,
          sameTime,
          quick,
          timeLimitSec,
        },
        rows,
        scans,
        targets,
        durationSec,
      },
    );
    console.log(`saved ${files.join(', ')}`);
  }
  if (args.check && targets.some((t) => !t.ok)) process.exitCode = 1;
} finally {
  await clear(base);
  admin.disconnect();
  queueClient.disconnect();
}
