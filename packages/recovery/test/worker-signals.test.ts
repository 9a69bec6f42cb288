import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { JsonCodec } from '@tcc/core';
import { makeRecord } from '@tcc/core/testing';
import { RedisStorage } from '@tcc/storage-redis';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RedisServers, startStandalone } from '../../../test/support/redis-servers.js';
import { recoveryJobId } from '../src/index.js';
import { buildRecovery, type Child, CLI, startChild, until } from './support.js';

// `tccctl worker` processes against a Redis of their own, which one test SIGKILLs and starts again.
const CONFIG = fileURLToPath(new URL('./fixtures/close-timeout.config.mjs', import.meta.url));
const HOUR = 3_600_000;
/** Bounds a hang only; nothing here asserts how fast a process exits. */
const EXIT_BOUND_MS = 60_000;
const codec = new JsonCodec();

let servers: RedisServers;
let redis: Redis;
let n = 0;

beforeAll(async () => {
  [servers] = await Promise.all([startStandalone(1), buildRecovery()]);
  const { host, port } = servers.servers[0]!;
  redis = new Redis({ host, port });
  redis.on('error', () => {}); // one test kills the server under it
});
afterAll(async () => {
  redis?.disconnect();
  await servers?.stop();
});

const server = () => servers.servers[0]!;

/** A domain of its own on the throwaway Redis, with one stuck CONFIRMING record paying `order`. */
async function stuckShop(order: string) {
  const prefix = `signals-${process.pid}-${n++}:`;
  const storage = new RedisStorage({ client: redis, prefix });
  const old = Date.now() - HOUR;
  const record = makeRecord({
    domain: 'shop',
    status: 'CONFIRMING',
    createdAt: old,
    updatedAt: old,
    participants: [
      {
        id: 'p1',
        kind: 'local',
        target: 'shop.pay',
        confirm: 'confirm',
        cancel: 'cancel',
        args: codec.encode([order]),
        status: 'TRYING',
      },
    ],
  });
  await storage.create(record);
  const env = {
    TCC_TEST_PREFIX: prefix,
    REDIS_URL: `redis://${server().host}:${server().port}`,
  };
  const field = `pay.confirm:${order}`;
  return {
    storage,
    xid: record.xid,
    env,
    /** Times a worker has begun the confirm (see the shop config's effects). */
    confirmsBegun: async () => Number((await redis.hget(`${prefix}{fx}:calls`, field)) ?? 0),
    /** The pid of the worker whose confirm took effect, if one did. */
    appliedBy: () => redis.hget(`${prefix}{fx}:applied`, field),
    /** Ids of the jobs BullMQ's stalled-job check moved back to waiting (its events stream). */
    async stalledJobs(): Promise<string[]> {
      const entries = await redis.xrange(`${prefix}{q}:tcc-recovery-shop:events`, '-', '+');
      return entries
        .map(([, fields]) => Object.fromEntries(pairs(fields)))
        .filter((e) => e.event === 'stalled')
        .map((e) => e.jobId!);
    },
  };
}

function pairs(fields: string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i + 1 < fields.length; i += 2) out.push([fields[i]!, fields[i + 1]!]);
  return out;
}

function worker(env: NodeJS.ProcessEnv): Child {
  return startChild(CLI, ['worker', '--config', CONFIG], env);
}

/** The exit code once the process has exited; fails, with its output, if it is still running after a generous bound. */
async function exitCode(child: Child): Promise<number | null> {
  const p = child.process;
  if (p.exitCode !== null || p.signalCode !== null) return p.exitCode;
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`tccctl worker still running ${EXIT_BOUND_MS} ms later: ${child.output()}`)),
      EXIT_BOUND_MS,
    );
  });
  try {
    const [code] = (await Promise.race([once(p, 'exit'), bound])) as [number | null];
    return code;
  } finally {
    clearTimeout(timer);
  }
}

describe('tccctl worker: SIGTERM during a Redis outage', () => {
  it('closes by force and exits; once Redis is back another worker takes the job over through the stalled-job check', async () => {
    const shop = await stuckShop('order-outage');
    // Its confirm takes ten minutes: the job is active when Redis goes.
    const a = worker({ ...shop.env, TCC_TEST_CONFIRM_DELAY: '600000', TCC_TEST_CLOSE_TIMEOUT: '1000' });
    await until('worker A to begin the confirm', async () => (await shop.confirmsBegun()) === 1, 60_000);
    // The throwaway server keeps nothing on disk by itself: this snapshot, taken with the job
    // active, is what a production Redis would have kept, and what it loads when started again.
    await redis.save();
    await server().kill('SIGKILL');

    a.process.kill('SIGTERM');
    expect(await exitCode(a)).toBe(1);
    expect(a.output()).toMatch(/SIGTERM: draining \(within 1000 ms;/);
    expect(a.output()).toMatch(/the drain did not finish within 1000 ms .* closed by force/);
    expect(a.output()).not.toMatch(/drained and closed/);

    await server().restart();
    const b = worker(shop.env);
    try {
      await until(
        'worker B to confirm',
        async () => (await shop.appliedBy()) === String(b.process.pid),
        60_000,
      );
      // The job A held was still active in Redis: only the stalled-job check could hand it over.
      expect(await shop.stalledJobs()).toContain(recoveryJobId(shop.xid));
      expect(await shop.confirmsBegun()).toBe(2); // A's, cut off, and B's
      await until('the record to be finished', async () => {
        const record = await shop.storage.get(shop.xid);
        return record === undefined || record.status === 'CONFIRMED';
      });
    } finally {
      b.process.kill('SIGTERM');
      expect(await exitCode(b)).toBe(0);
    }
    expect(b.output()).toMatch(/drained and closed/);
  }, 180_000);
});

describe('tccctl worker: a second signal', () => {
  it.each<[NodeJS.Signals, number]>([
    ['SIGTERM', 143],
    ['SIGINT', 130],
  ])(
    'a second %s exits at once with %i, without waiting for the drain',
    async (signal, code) => {
      const shop = await stuckShop(`order-${signal}`);
      // A drain that would wait ten minutes for a ten-minute confirm.
      const a = worker({ ...shop.env, TCC_TEST_CONFIRM_DELAY: '600000', TCC_TEST_CLOSE_TIMEOUT: '600000' });
      await until('the worker to begin the confirm', async () => (await shop.confirmsBegun()) === 1, 60_000);
      a.process.kill(signal);
      await a.waitFor(`${signal}: draining (within 600000 ms; send SIGTERM or SIGINT again to exit at once)`);
      a.process.kill(signal);
      expect(await exitCode(a)).toBe(code);
      expect(a.output()).toMatch(new RegExp(`${signal} again: exiting at once without draining`));
      expect(a.output()).not.toMatch(/drained and closed/);
    },
    120_000,
  );
});
