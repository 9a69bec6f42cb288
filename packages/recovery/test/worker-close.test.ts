import { InvalidOptionError, JsonCodec, type RecoveryResult, Tcc } from '@tcc/core';
import { makeRecord } from '@tcc/core/testing';
import { RedisStorage } from '@tcc/storage-redis';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type RedisServers, startStandalone } from '../../../test/support/redis-servers.js';
import { type CloseOutcome, RecoveryWorker } from '../src/index.js';
import { until } from './support.js';

// close() against a Redis of its own, which the tests SIGKILL: the machine's shared Redis must
// stay up for everyone else.
let servers: RedisServers;
let up = true;
const clients: Redis[] = [];
const HOUR = 3_600_000;
const codec = new JsonCodec();

beforeAll(async () => {
  servers = await startStandalone(1);
});
beforeEach(async () => {
  if (!up) await servers.servers[0]!.restart();
  up = true;
});
afterAll(async () => {
  for (const client of clients) client.disconnect();
  await servers?.stop();
});

const server = () => servers.servers[0]!;
const address = () => ({ host: server().host, port: server().port });

async function killRedis(): Promise<void> {
  up = false;
  await server().kill('SIGKILL');
}

function client(options: { maxRetriesPerRequest: number | null }): Redis {
  const c = new Redis({ ...address(), ...options });
  c.on('error', () => {}); // the tests kill the server under it
  clients.push(c);
  return c;
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

let n = 0;

/**
 * A domain with one stuck CONFIRMING record whose confirm, once a worker runs it, waits for
 * `release`: the record's job stays active until then.
 */
async function stuckShop() {
  const prefix = `close-${process.pid}-${n++}:`;
  const storage = new RedisStorage({ client: client({ maxRetriesPerRequest: 1 }), prefix });
  const tcc = new Tcc({ domain: 'shop', storage, recovery: { recoverAfterMs: 100 } });
  const started = deferred();
  const release = deferred();
  tcc.compensable('shop.pay', {
    try: async (_id: string) => {},
    confirm: async (_id: string) => {
      started.resolve();
      await release.promise;
    },
    cancel: async () => {},
  });
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
        args: codec.encode(['order-1']),
        status: 'TRYING',
      },
    ],
  });
  await storage.create(record);
  return { tcc, storage, prefix, xid: record.xid, started, release };
}

function watch(worker: RecoveryWorker) {
  const closed: CloseOutcome[] = [];
  const recovered: RecoveryResult[] = [];
  worker.on('closed', (outcome) => closed.push(outcome));
  worker.on('recovered', (result) => recovered.push(result));
  worker.on('error', () => {}); // Redis goes away on purpose
  return { closed, recovered };
}

describe('close({ timeoutMs }): bad input', () => {
  const idle = () =>
    new RecoveryWorker({
      tcc: new Tcc({
        domain: 'shop',
        storage: new RedisStorage({ client: client({ maxRetriesPerRequest: 1 }) }),
      }),
      connection: { ...address(), maxRetriesPerRequest: null, lazyConnect: true },
    });

  it.each<[string, unknown, RegExp]>([
    ['a negative timeout', { timeoutMs: -1 }, /timeoutMs must be a whole number of ms .* got -1/],
    ['a fraction', { timeoutMs: 1.5 }, /timeoutMs must be .* got 1\.5/],
    ['NaN', { timeoutMs: Number.NaN }, /timeoutMs must be .* got NaN/],
    ['a string', { timeoutMs: '10s' }, /timeoutMs must be .* got "10s"/],
    [
      'more than a timer can wait',
      { timeoutMs: 2 ** 31 },
      /from 0 to 2147483647, or Infinity, got 2147483648/,
    ],
    ['an unknown option', { timeout: 5 }, /RecoveryWorker\.close: unknown option timeout/],
    ['options that are not an object', 5_000, /RecoveryWorker\.close: options must be an object, got 5000/],
  ])(
    '%s is refused with a InvalidOptionError naming it, and nothing is closed',
    async (_n, options, message) => {
      const worker = idle();
      const { closed } = watch(worker);
      const refused = worker.close(options as never);
      await expect(refused).rejects.toThrow(InvalidOptionError);
      await expect(refused).rejects.toThrow(message);
      expect(closed).toEqual([]);
      // The refused call did not begin a close: a good one still does.
      expect(await worker.close({ timeoutMs: 1_000 })).toBe('drained');
      expect(closed).toEqual(['drained']);
    },
  );

  it.each<[string, unknown, RegExp]>([
    [
      'a negative closeTimeoutMs',
      -5,
      /new RecoveryWorker: closeTimeoutMs must be a whole number of ms .* got -5/,
    ],
    ['a string closeTimeoutMs', '10s', /closeTimeoutMs must be .* got "10s"/],
  ])('the constructor refuses %s', (_n, closeTimeoutMs, message) => {
    const make = () =>
      new RecoveryWorker({
        tcc: new Tcc({
          domain: 'shop',
          storage: new RedisStorage({ client: client({ maxRetriesPerRequest: 1 }) }),
        }),
        connection: { ...address(), maxRetriesPerRequest: null, lazyConnect: true },
        closeTimeoutMs: closeTimeoutMs as number,
      });
    expect(make).toThrow(InvalidOptionError);
    expect(make).toThrow(message);
  });

  it('defaults to 10 s and takes Infinity', () => {
    const worker = idle();
    expect(worker.options.closeTimeoutMs).toBe(10_000);
    const patient = new RecoveryWorker({ ...worker.options, closeTimeoutMs: Number.POSITIVE_INFINITY });
    expect(patient.options.closeTimeoutMs).toBe(Number.POSITIVE_INFINITY);
  });
});

describe('close({ timeoutMs }) of a worker running a job', () => {
  it('drains: waits for the running job, however long, when Redis is up', async () => {
    const shop = await stuckShop();
    const worker = new RecoveryWorker({
      tcc: shop.tcc,
      connection: { ...address(), maxRetriesPerRequest: null },
      prefix: `${shop.prefix}{q}`,
      scanEveryMs: 60_000,
    });
    const { closed, recovered } = watch(worker);
    await worker.start();
    await shop.started.promise;
    const closing = worker.close({ timeoutMs: Number.POSITIVE_INFINITY });
    shop.release.resolve();
    expect(await closing).toBe('drained');
    expect(closed).toEqual(['drained']);
    expect(recovered).toContainEqual(expect.objectContaining({ xid: shop.xid, outcome: 'confirmed' }));
  });

  it('Redis gone: stops waiting after timeoutMs, disconnects what BullMQ made, resolves "forced"', async () => {
    const shop = await stuckShop();
    // Connection options: every connection, the queue's included, is BullMQ's to close.
    const worker = new RecoveryWorker({
      tcc: shop.tcc,
      connection: { ...address(), maxRetriesPerRequest: null },
      prefix: `${shop.prefix}{q}`,
      scanEveryMs: 60_000,
    });
    const { closed } = watch(worker);
    await worker.start();
    await shop.started.promise;
    await killRedis();
    try {
      expect(await worker.close({ timeoutMs: 200 })).toBe('forced');
      expect(closed).toEqual(['forced']);
      // The queue's ioredis client was cut, not left retrying for a Redis that is gone.
      const queueClient = await worker.queue!.getBackend().client;
      await until(
        'the queue connection to end',
        async () => (queueClient as unknown as Redis).status === 'end',
      );
      // Closed is closed: the same outcome again, no second event.
      expect(await worker.close()).toBe('forced');
      expect(closed).toEqual(['forced']);
    } finally {
      shop.release.resolve();
    }
  });

  it("Redis gone: a shorter timeout cuts a pending close short; the caller's client stays theirs", async () => {
    const shop = await stuckShop();
    const mine = client({ maxRetriesPerRequest: null });
    const worker = new RecoveryWorker({
      tcc: shop.tcc,
      connection: mine,
      prefix: `${shop.prefix}{q}`,
      scanEveryMs: 60_000,
    });
    const { closed } = watch(worker);
    await worker.start();
    await shop.started.promise;
    await killRedis();
    try {
      const patient = worker.close({ timeoutMs: Number.POSITIVE_INFINITY });
      const hurried = worker.close({ timeoutMs: 0 });
      expect(hurried).toBe(patient);
      expect(await patient).toBe('forced');
      expect(closed).toEqual(['forced']);
    } finally {
      shop.release.resolve();
    }
    // The client it was given was not disconnected: once Redis is back, it is the caller's to use.
    await server().restart();
    up = true;
    await until(
      'the caller’s client to reconnect',
      async () => (await mine.ping().catch(() => '')) === 'PONG',
    );
  }, 60_000);
});
