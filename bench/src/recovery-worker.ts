/**
 * One recovery worker process of `recovery.bench.ts`: a Tcc of domain `bench` on RedisStorage
 * (prefix from BENCH_PREFIX) with a `bench.pay` participant whose confirm and cancel only note
 * which record they ran for, and a RecoveryWorker on the bench's queue. Prints READY once it
 * takes jobs; SIGTERM drains and closes it, and it prints `CPU <µs>`: the process's CPU time
 * (user + system) from READY to closed; `CONFIRMED <n,n,...>` and `CANCELLED <n,...>`: the
 * record numbers each ran for, once per run (a number twice if it ran twice); `SCANNED <epoch
 * ms>` when a scan it ran ended. BENCH_RECOVERY=/path/to/recovery/dist/index.js runs another build.
 */
import { Tcc } from '@tcc/core';
import type * as Recovery from '@tcc/recovery';
import { RedisStorage } from '@tcc/storage-redis';
import { Redis } from 'ioredis';

const env = process.env;
// BENCH_RECOVERY: the path of another build of @tcc/recovery's index.js, to compare two builds.
const { RecoveryWorker } = (await import(env.BENCH_RECOVERY ?? '@tcc/recovery')) as typeof Recovery;
const url = env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = env.BENCH_PREFIX!;
const store = new Redis(url, { maxRetriesPerRequest: 3, enableAutoPipelining: true });
const queue = new Redis(url, { maxRetriesPerRequest: null });
const tcc = new Tcc({
  domain: 'bench',
  storage: new RedisStorage({ client: store, prefix }),
  recovery: { recoverAfterMs: 1_000 },
});
// Kept in memory and told at exit, not written to Redis: the bench's Redis figures stay those
// of recovery alone.
const confirmed: number[] = [];
const cancelled: number[] = [];
tcc.compensable('bench.pay', {
  try: async (_n: number) => {},
  confirm: async (n: number) => void confirmed.push(n),
  cancel: async (n: number) => void cancelled.push(n),
});

const worker = new RecoveryWorker({
  tcc,
  connection: queue,
  prefix: `${prefix}{q}`,
  recoverAfterMs: 1_000, // the Tcc's too (today's default; a build before it had 30,000)
  scanEveryMs: 60_000,
  concurrency: Number(env.BENCH_CONCURRENCY ?? 64),
  batchSize: Number(env.BENCH_BATCH_SIZE ?? 1_000),
  handleSignals: true,
});
let cpuAtReady: NodeJS.CpuUsage | undefined;
// When this process's scan ended (the bench's drain has a single scan), for the scan's share.
worker.once('scanned', () => process.stdout.write(`SCANNED ${Date.now()}\n`));
worker.once('closed', () => {
  const cpu = process.cpuUsage(cpuAtReady);
  process.stdout.write(`CPU ${cpu.user + cpu.system}\n`);
  process.stdout.write(`CONFIRMED ${confirmed.join(',')}\nCANCELLED ${cancelled.join(',')}\n`);
  store.disconnect();
  queue.disconnect();
});
await worker.start();
cpuAtReady = process.cpuUsage();
process.stdout.write('READY\n');
