import { CorruptRecordError, InvalidOptionError, StorageError } from '@tcc/core';
import { makeRecord } from '@tcc/core/testing';
import { RedisStorage, ReplicationTimeoutError, SchemaVersionError } from '@tcc/storage-redis';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRedis, type RedisHarness } from '../../../test/support/redis.js';
import { freePort } from '../../../test/support/redis-servers.js';

let redis: RedisHarness;

beforeAll(async () => {
  redis = await openRedis();
});
afterAll(async () => {
  await redis?.end();
});

const HOUR = 3_600_000;

describe('corrupt stored records', () => {
  async function setup() {
    const corrupt: CorruptRecordError[] = [];
    const store = new RedisStorage({
      client: redis.client,
      prefix: redis.prefix(),
      onCorrupt: (error) => corrupt.push(error),
    });
    const good = makeRecord({ createdAt: Date.now() - HOUR });
    await store.create(good);
    return { store, corrupt, good };
  }

  it.each<[string, (key: string, xid: string) => Promise<unknown>, RegExp]>([
    ['bad JSON', (key) => redis.client.hset(key, 'v', '1', 'd', 'test', 'r', '{"xid": nope'), /not JSON/],
    [
      'missing fields',
      (key, xid) =>
        redis.client.hset(key, 'v', '1', 'd', 'test', 'r', JSON.stringify({ xid, domain: 'test' })),
      /field globalId is missing/,
    ],
    [
      'a participant without its kind',
      (key, xid) =>
        redis.client.hset(
          key,
          'r',
          JSON.stringify({ ...makeRecord({ xid }), participants: [{ id: 'p1', status: 'TRYING' }] }),
        ),
      /participants\[0\]: kind is missing/,
    ],
    ['a string instead of a hash', (key) => redis.client.set(key, '{}'), /not a hash/],
  ])(
    '%s: get throws CorruptRecordError with the key; findStuck and list skip and report it',
    async (_n, write, reason) => {
      const { store, corrupt, good } = await setup();
      const bad = makeRecord({ createdAt: Date.now() - HOUR });
      await store.create(bad);
      const { key } = store.locate(bad.xid);
      await redis.client.del(key);
      await write(key, bad.xid);

      const error = await store.get(bad.xid).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CorruptRecordError);
      expect(error).toMatchObject({ code: 'TCC_CORRUPT_RECORD', key });
      expect((error as Error).message).toContain(key);
      expect((error as Error).message).toMatch(reason);

      const stuck = await store.findStuck({ domain: 'test', dueBefore: Date.now(), limit: 10 });
      expect(stuck.records).toStrictEqual([good]);
      expect((await store.list({})).records).toStrictEqual([good]);
      expect(corrupt.length).toBeGreaterThanOrEqual(2);
      for (const e of corrupt) expect(e.key).toBe(key);
    },
  );

  it('reports through process warnings by default', async () => {
    const store = new RedisStorage({ client: redis.client, prefix: redis.prefix() });
    const bad = makeRecord({ createdAt: Date.now() - HOUR });
    await store.create(bad);
    await redis.client.hset(store.locate(bad.xid).key, 'r', 'garbage');
    const warnings: Error[] = [];
    const listener = (w: Error) => warnings.push(w);
    process.on('warning', listener);
    try {
      expect((await store.findStuck({ domain: 'test', dueBefore: Date.now(), limit: 10 })).records).toEqual(
        [],
      );
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('warning', listener);
    }
    expect(warnings.map((w) => w.message)).toEqual([expect.stringContaining(store.locate(bad.xid).key)]);
  });
});

describe('schema version', () => {
  it('refuses a key space marked with a newer schema version, naming both versions', async () => {
    const prefix = redis.prefix();
    await redis.client.set(`${prefix}meta`, JSON.stringify({ schema: 2, buckets: 16 }));
    const store = new RedisStorage({ client: redis.client, prefix });
    const error = await store.get('x').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SchemaVersionError);
    expect(error).toMatchObject({ code: 'TCC_SCHEMA_VERSION', key: `${prefix}meta` });
    expect((error as Error).message).toMatch(/schema version 2.*version 1.*upgrade @tcc\/storage-redis/);
    await expect(store.create(makeRecord())).rejects.toMatchObject({ code: 'TCC_SCHEMA_VERSION' });
    await expect(store.migrate()).rejects.toMatchObject({ code: 'TCC_SCHEMA_VERSION' });
  });

  it('refuses an unreadable marker and a different number of buckets', async () => {
    const prefix = redis.prefix();
    await redis.client.set(`${prefix}meta`, 'hello');
    await expect(new RedisStorage({ client: redis.client, prefix }).migrate()).rejects.toThrow(
      /not a @tcc\/storage-redis schema marker/,
    );
    const other = redis.prefix();
    await new RedisStorage({ client: redis.client, prefix: other, buckets: 8 }).migrate();
    await expect(new RedisStorage({ client: redis.client, prefix: other }).migrate()).rejects.toThrow(
      /buckets: 8.*buckets: 16/,
    );
  });
});

describe('connection failures', () => {
  it('rejects with StorageError naming the operation and the address when nothing listens', async () => {
    const port = await freePort();
    const client = new Redis({ host: '127.0.0.1', port, lazyConnect: true, retryStrategy: () => null });
    client.on('error', () => {});
    try {
      const store = new RedisStorage({ client });
      const error = await store.get('x1').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StorageError);
      expect(error).toMatchObject({ code: 'TCC_STORAGE' });
      expect((error as Error).message).toContain(`127.0.0.1:${port}`);
      expect((error as Error).message).toContain('schema check');
      expect((error as Error).cause).toBeInstanceOf(Error);
    } finally {
      client.disconnect();
    }
  });

  it('rejects with StorageError on a closed client, naming the write', async () => {
    const client = await redis.newClient({ enableOfflineQueue: false });
    const store = new RedisStorage({ client, prefix: redis.prefix() });
    await store.migrate();
    await client.quit();
    const record = makeRecord();
    const error = await store.create(record).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StorageError);
    expect((error as Error).message).toContain(`create of transaction ${record.xid}`);
    const { hostname, port } = new URL(redis.url);
    expect((error as Error).message).toContain(`${hostname}:${port || 6379}`);
  });

  it('leaves the clients it was given open on close, and refuses calls afterwards', async () => {
    const store = new RedisStorage({ client: redis.client, prefix: redis.prefix() });
    await store.close();
    await store.close();
    expect(redis.client.status).toBe('ready');
    await expect(store.get('x')).rejects.toBeInstanceOf(StorageError);
  });
});

describe('options', () => {
  it.each<[string, () => unknown, RegExp]>([
    [
      'no connection',
      () => new RedisStorage(undefined as never),
      /expected \{ client \} or \{ clients \}, got undefined/,
    ],
    [
      'a non-client',
      () => new RedisStorage({ client: {} as never }),
      /client must be an ioredis Redis or Cluster, got an object/,
    ],
    ['empty clients', () => new RedisStorage({ clients: [] }), /clients must not be empty/],
    [
      'a prefix with a hash tag',
      () => new RedisStorage({ client: redis.client, prefix: 'a{b}' }),
      /prefix .* got "a\{b\}"/,
    ],
    [
      'zero buckets',
      () => new RedisStorage({ client: redis.client, buckets: 0 }),
      /buckets must be an integer from 1 to 16384, got 0/,
    ],
    [
      'negative replicas',
      () => new RedisStorage({ client: redis.client, replicas: -1 }),
      /replicas must be a non-negative integer, got -1/,
    ],
    [
      'a fractional timeout',
      () => new RedisStorage({ client: redis.client, replicaTimeoutMs: 1.5 }),
      /replicaTimeoutMs must be a positive integer, got 1.5/,
    ],
    [
      'a non-function onCorrupt',
      () => new RedisStorage({ client: redis.client, onCorrupt: 'log' as never }),
      /onCorrupt must be a function, got "log"/,
    ],
    [
      'duplicate shard ids',
      () =>
        new RedisStorage({
          clients: [
            { id: 'a', client: redis.client },
            { id: 'a', client: redis.client },
          ],
        }),
      /clients\[0\] and clients\[1\] have the same shard id "a"/,
    ],
  ])('refuses %s with a message naming the value', (_name, make, message) => {
    let thrown: unknown;
    try {
      make();
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(InvalidOptionError);
    expect((thrown as Error).message).toMatch(message);
  });
});

describe('replicas', () => {
  it('waits for replicas on every write: each rejects with ReplicationTimeoutError when none acknowledges', async () => {
    const prefix = redis.prefix();
    const store = new RedisStorage({ client: redis.client, prefix, replicas: 1, replicaTimeoutMs: 50 });
    const plain = new RedisStorage({ client: redis.client, prefix });
    const record = makeRecord();
    const timedOut = async (write: Promise<void>) => {
      const error = await write.catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ReplicationTimeoutError);
      expect(error).toMatchObject({ code: 'TCC_REPLICATION_TIMEOUT', acknowledged: 0, required: 1 });
      expect((error as Error).message).toMatch(/0 of 1 replicas acknowledged .* within \d+ ms/);
    };
    // Outcome unknown, not failed: the primary applied each write.
    await timedOut(store.create(record));
    expect((await plain.get(record.xid))?.version).toBe(1);
    await timedOut(store.update({ ...record, retries: 1, version: 2 }, 1));
    await timedOut(store.update({ ...record, status: 'CONFIRMING', version: 3 }, 2));
    expect((await plain.get(record.xid))?.status).toBe('CONFIRMING');
    // A lost compare-and-set is still an OptimisticLockError, not a replication error.
    await expect(store.update({ ...record, status: 'CANCELLING', version: 3 }, 2)).rejects.toMatchObject({
      code: 'TCC_OPTIMISTIC_LOCK',
    });
    await timedOut(store.remove(record.xid, 3));
    expect(await plain.get(record.xid)).toBeUndefined();
    const branch = makeRecord({ type: 'BRANCH' });
    await plain.create(branch);
    const done = { ...branch, status: 'CONFIRMED' as const, version: 2, expiresAt: Date.now() + 60_000 };
    await timedOut(store.complete(done, 1));
    expect((await plain.get(branch.xid))?.status).toBe('CONFIRMED');
  });

  it('drops the index entries of expired tombstones as later tombstones are written', async () => {
    const tombstone = (expiresAt: number) => makeRecord({ type: 'BRANCH', status: 'CANCELLED', expiresAt });
    // Tombstones expire by the server's clock. The first twenty must all be written before
    // they expire: if the machine was too slow for the window, they are written again with a
    // window twice as long, so no speed is assumed.
    let prefix = '';
    let store: RedisStorage | undefined;
    let expiresAt = 0;
    for (let windowMs = 250; store === undefined; windowMs *= 2) {
      expect(windowMs, 'twenty writes never fitted in the window').toBeLessThan(300_000);
      prefix = redis.prefix();
      const candidate = new RedisStorage({ client: redis.client, prefix, buckets: 1 });
      expiresAt = (await serverNow()) + windowMs;
      for (let i = 0; i < 20; i++) await candidate.create(tombstone(expiresAt));
      if ((await serverNow()) < expiresAt) store = candidate;
    }
    expect(await redis.client.zcard(`${prefix}{b0}:exp`)).toBe(20);
    while ((await serverNow()) <= expiresAt) await new Promise((resolve) => setTimeout(resolve, 10));
    // All twenty have expired; their index entries go two per tombstone written.
    for (let i = 0; i < 10; i++) await store.create(tombstone((await serverNow()) + HOUR));
    expect(await redis.client.zcard(`${prefix}{b0}:exp`)).toBe(10);
    expect(await redis.client.zcard(`${prefix}{b0}:all`)).toBe(10);
    expect(await redis.client.hlen(`${prefix}{b0}:expdom`)).toBe(10);
  });
});

/** The Redis server's clock in ms: what tombstone expiry goes by. */
async function serverNow(): Promise<number> {
  const [seconds, micros] = await redis.client.time();
  return Number(seconds) * 1_000 + Math.floor(Number(micros) / 1_000);
}
