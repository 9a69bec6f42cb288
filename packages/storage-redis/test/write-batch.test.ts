import { makeRecord } from '@tcc/core/testing';
import { RedisStorage } from '@tcc/storage-redis';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRedis, type RedisHarness } from '../../../test/support/redis.js';

let redis: RedisHarness;

beforeAll(async () => {
  redis = await openRedis();
});
afterAll(async () => {
  await redis?.end();
});

/** Counts the socket writes of a connected client (what reaches the kernel, corked or not). */
function countSocketWrites(stream: object): { readonly count: number } {
  const counter = { count: 0 };
  const socket = stream as { _write: (...a: unknown[]) => unknown; _writev?: (...a: unknown[]) => unknown };
  const write = socket._write;
  socket._write = function (this: unknown, ...args: unknown[]) {
    counter.count++;
    return write.apply(this, args);
  };
  const writev = socket._writev;
  if (writev !== undefined) {
    socket._writev = function (this: unknown, ...args: unknown[]) {
      counter.count++;
      return writev.apply(this, args);
    };
  }
  return counter;
}

describe('writes of one tick on a standalone client', () => {
  it('leave in one socket write, each answered by its own reply', async () => {
    const client = await redis.newClient();
    const store = new RedisStorage({ client, prefix: redis.prefix() });
    // Once first, so that a script the server does not have yet (NOSCRIPT, then EVAL) is loaded.
    await store.create(makeRecord());
    const writes = countSocketWrites(client.stream);
    const records = Array.from({ length: 50 }, () => makeRecord());
    await Promise.all(records.map((r) => store.create(r)));
    expect(writes.count).toBe(1);
    expect(client.stream.writableCorked).toBe(0);
    // The replies went to their own commands: each create won, a second one of each lost.
    const again = await Promise.allSettled(records.map((r) => store.create(r)));
    expect(again.map((r) => r.status)).toEqual(records.map(() => 'rejected'));
    const read = await Promise.all(records.map((r) => store.get(r.xid)));
    expect(read).toStrictEqual(records);
  });

  it('are not held on a client that is not connected yet: ioredis queues them itself', async () => {
    const client = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      const store = new RedisStorage({ client, prefix: redis.prefix() });
      const records = Array.from({ length: 5 }, () => makeRecord());
      await Promise.all(records.map((r) => store.create(r)));
      expect(await Promise.all(records.map((r) => store.get(r.xid)))).toStrictEqual(records);
      expect(client.stream.writableCorked).toBe(0);
    } finally {
      client.disconnect();
    }
  });
});
