/**
 * One recovery worker process of `recovery.bench.ts`: a Tcc of domain `bench` on RedisStorage
 * (prefix from BENCH_PREFIX) with a no-op `bench.pay` participant, and a RecoveryWorker on the
 * bench's queue. Prints READY once it takes jobs; SIGTERM drains and closes it.
 */
import { Tcc } from '@tcc/core';
import { RecoveryWorker } from '@tcc/recovery';
import { RedisStorage } from '@tcc/storage-redis';
import { Redis } from 'ioredis';

const env = process.env;
const url = env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = env.BENCH_PREFIX!;
const store = new Redis(url, { maxRetriesPerRequest: 3, enableAutoPipelining: true });
const queue = new Redis(url, { maxRetriesPerRequest: null });
const tcc = new Tcc({
  domain: 'bench',
  storage: new RedisStorage({ client: store, prefix }),
  recovery: { recoverAfterMs: 1_000 },
});
tcc.compensable('bench.pay', {
  try: async (_n: number) => {},
  confirm: async () => {},
  cancel: async () => {},
});

const worker = new RecoveryWorker({
  tcc,
  connection: queue,
  prefix: `${prefix}{q}`,
  recoverAfterMs: 1_000,
  scanEveryMs: 60_000,
  concurrency: Number(env.BENCH_CONCURRENCY ?? 64),
  batchSize: 1_000,
  handleSignals: true,
});
worker.once('closed', () => {
  store.disconnect();
  queue.disconnect();
});
await worker.start();
process.stdout.write('READY\n');
