/**
 * `npm run bench -- recovery`: records recovered per second when BullMQ recovery workers drain
 * 10,000 stuck transactions (CONFIRMING, one participant), with 1 and with 3 worker processes;
 * and what one scan costs with and without finished transactions kept for retention.
 * `--help` lists the options.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { JsonCodec, type TransactionRecord } from '@tcc/core';
import { RedisStorage } from '@tcc/storage-redis';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { median } from './harness.js';
import { int, machine, saveResults, table } from './report.js';

const USAGE = `usage: node bench/dist/recovery.bench.js [options]

  --quick            smoke run: 500 records, 1 repeat, nothing saved
  --records <n>      stuck transactions to drain per run (default 10000)
  --repeats <n>      runs per row, the median is reported (default 3)
  --concurrency <n>  jobs per worker process (default 64)
  --save / --no-save write bench/results/recovery-<date>.json and recovery-latest.json
                     (default: save a full run, not a quick one)
  --check            exit with status 1 if a target is missed (>= 5,000 records/s, 1 worker)
  --help

Needs Redis at REDIS_URL (default redis://127.0.0.1:6379); keys under tcc-bench-recovery:<pid>:.`;

const TARGET_PER_SEC = 5_000;
const here = fileURLToPath(new URL('.', import.meta.url));
const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean' },
    records: { type: 'string' },
    repeats: { type: 'string' },
    concurrency: { type: 'string' },
    save: { type: 'boolean' },
    'no-save': { type: 'boolean' },
    check: { type: 'boolean' },
    help: { type: 'boolean' },
  },
});
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const quick = values.quick === true;
const records = Number(values.records ?? (quick ? 500 : 10_000));
const repeats = Number(values.repeats ?? (quick ? 1 : 3));
const concurrency = Number(values.concurrency ?? 64);
const save = values['no-save'] ? false : (values.save ?? !quick);
for (const [name, n] of [
  ['records', records],
  ['repeats', repeats],
  ['concurrency', concurrency],
] as const) {
  if (!Number.isInteger(n) || n <= 0) {
    console.error(`--${name} must be a positive integer\n\n${USAGE}`);
    process.exit(2);
  }
}

const base = `tcc-bench-recovery:${process.pid}:`;
const admin = new Redis(url, { maxRetriesPerRequest: 3, enableAutoPipelining: true });
const queueClient = new Redis(url, { maxRetriesPerRequest: null });
const codec = new JsonCodec();
let run = 0;

/** Creates `n` records of domain bench in `status`, last written a minute ago. */
async function fill(storage: RedisStorage, n: number, status: 'CONFIRMING' | 'CONFIRMED'): Promise<void> {
  const at = Date.now() - 60_000;
  for (let from = 0; from < n; from += 1_000) {
    const batch: Promise<void>[] = [];
    for (let i = from; i < Math.min(n, from + 1_000); i++) {
      const xid = `${status === 'CONFIRMED' ? 'done' : 'stuck'}-${run}-${i}`;
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
        createdAt: at,
        updatedAt: at,
        deadline: at + 1_000,
        ...(status === 'CONFIRMED' ? { expiresAt: Date.now() + 3_600_000 } : {}),
      };
      batch.push(storage.create(record));
    }
    await Promise.all(batch);
  }
}

function startWorker(prefix: string): { child: ChildProcess; ready: Promise<void> } {
  const child = spawn(process.execPath, [`${here}recovery-worker.js`], {
    env: { ...process.env, BENCH_PREFIX: prefix, REDIS_URL: url, BENCH_CONCURRENCY: String(concurrency) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('READY')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`worker exited (${code}) before it was ready`)));
  });
  return { child, ready };
}

/** One drain: `records` stuck records, `workers` processes; resolves with records/s. */
async function drain(workers: number): Promise<number> {
  run++;
  const prefix = `${base}${run}:`;
  const storage = new RedisStorage({ client: admin, prefix });
  await fill(storage, records, 'CONFIRMING');
  // Paused until every worker is ready, so process start-up is not in the measure; the scan is.
  const queue = new Queue('tcc-recovery-bench', { connection: queueClient, prefix: `${prefix}{q}` });
  await queue.pause();
  const started = Array.from({ length: workers }, () => startWorker(prefix));
  await Promise.all(started.map((w) => w.ready));
  const t0 = performance.now();
  await queue.resume();
  while ((await storage.count({ domain: 'bench' })) > 0) await new Promise((r) => setTimeout(r, 20));
  const seconds = (performance.now() - t0) / 1_000;
  await Promise.all(
    started.map(async ({ child }) => {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    }),
  );
  await queue.obliterate({ force: true }).catch(() => {});
  await queue.close();
  await clear(prefix);
  return records / seconds;
}

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
        updatedBefore: Date.now() - 1_000,
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
const rows: { name: string; workers: number; runs: number[]; median: number }[] = [];
try {
  for (const workers of [1, 3]) {
    const runs: number[] = [];
    for (let i = 0; i < repeats; i++) runs.push(await drain(workers));
    rows.push({
      name: `drain ${int(records)} stuck, ${workers} worker process${workers > 1 ? 'es' : ''}`,
      workers,
      runs,
      median: median(runs),
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
  const one = rows.find((r) => r.workers === 1)!;
  const targets = [
    {
      what: `1 worker >= ${int(TARGET_PER_SEC)} records/s`,
      ok: one.median >= TARGET_PER_SEC,
      value: one.median,
    },
  ];
  const m = machine();
  console.log(`tcc recovery benchmark  ${date}`);
  console.log(
    `node ${m.node} | ${m.cpu} x ${m.cores} | ${m.os} | load ${m.loadAverageAtStart.join(' ')} | concurrency ${concurrency}/worker, ${repeats} run(s) per row, median`,
  );
  console.log('');
  console.log(
    table(
      ['row', 'records/s (median)', 'runs', 'target'],
      ['l', 'r', 'l', 'l'],
      rows.map((r) => [
        r.name,
        int(r.median),
        r.runs.map(int).join(' / '),
        r.workers === 1 ? `>= ${int(TARGET_PER_SEC)}: ${one.median >= TARGET_PER_SEC ? 'ok' : 'MISS'}` : '',
      ]),
    ),
  );
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
        settings: { records, repeats, concurrency, quick },
        rows,
        scans,
        targets,
        durationSec,
      },
    );
    console.log(`saved ${files.join(', ')}`);
  }
  if (values.check && targets.some((t) => !t.ok)) process.exitCode = 1;
} finally {
  await clear(base);
  admin.disconnect();
  queueClient.disconnect();
}
