import { makeRecord } from '@tcc/core/testing';
import { RedisStorage } from '@tcc/storage-redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRedis, type RedisHarness } from '../../../test/support/redis.js';

/*
 * A write leaves the stuck index alone when the hash's mark `s` ('<version>:<dueAt>') says the
 * record's entry is already where the write would put it. Hashes written by an older release
 * have no mark, and an older release's writes move the version on without one: the index must
 * then be written as before, or the stuck scan would look for a record at a dueAt it left.
 */

let redis: RedisHarness;

beforeAll(async () => {
  redis = await openRedis();
});
afterAll(async () => {
  await redis?.end();
});

function open(): { store: RedisStorage; prefix: string } {
  const prefix = redis.prefix();
  return { store: new RedisStorage({ client: redis.client, prefix, buckets: 1 }), prefix };
}

const past = () => Date.now() - 60_000;

describe('the stuck index mark of a record hash', () => {
  it('is written with each version: the dueAt the stuck index holds, or nothing for a terminal record', async () => {
    const { store } = open();
    const record = makeRecord({ dueAt: past() });
    await store.create(record);
    const { key } = store.locate(record.xid);
    expect(await redis.client.hget(key, 's')).toBe(`1:${record.dueAt}`);
    const parked = { ...record, version: 2, parkedAt: Date.now() };
    await store.update(parked, 1);
    expect(await redis.client.hget(key, 's')).toBe('2:');
    await store.complete({ ...parked, version: 3, status: 'CANCELLED', expiresAt: Date.now() + 60_000 }, 2);
    expect(await redis.client.hget(key, 's')).toBe('3:');
  });

  it('keeps the entry of a record whose dueAt stays, and moves it when the dueAt moves', async () => {
    const { store, prefix } = open();
    const record = makeRecord({ dueAt: past() });
    await store.create(record);
    const enlisted = { ...record, version: 2, attachments: { second: 'participant' } };
    await store.update(enlisted, 1);
    expect(await redis.client.zscore(`${prefix}{b0}:stuck:test`, record.xid)).toBe(String(record.dueAt));
    const claimed = { ...enlisted, version: 3, status: 'CONFIRMING' as const, dueAt: record.dueAt + 5 };
    await store.update(claimed, 2);
    expect(await redis.client.zscore(`${prefix}{b0}:stuck:test`, record.xid)).toBe(String(claimed.dueAt));
    const page = await store.findStuck({ domain: 'test', dueBefore: Date.now(), limit: 10 });
    expect(page.records).toStrictEqual([claimed]);
  });

  it('moves the entry of a hash written without the mark (an older release), and removes it', async () => {
    const { store, prefix } = open();
    const record = makeRecord({ dueAt: past() });
    await store.create(record);
    const { key } = store.locate(record.xid);
    // What an older release left: no mark, and the entry where its dueAt was.
    await redis.client.hdel(key, 's');
    const moved = { ...record, version: 2, dueAt: record.dueAt + 7 };
    await store.update(moved, 1);
    expect(await redis.client.zscore(`${prefix}{b0}:stuck:test`, record.xid)).toBe(String(moved.dueAt));
    await redis.client.hdel(key, 's');
    await store.remove(record.xid, 2);
    expect(await redis.client.zcard(`${prefix}{b0}:stuck:test`)).toBe(0);
    expect(await redis.client.zcard(`${prefix}{b0}:all`)).toBe(0);
  });

  it('does not trust a mark of an earlier version: an older release moved the entry since', async () => {
    const { store, prefix } = open();
    const record = makeRecord({ dueAt: past() });
    await store.create(record);
    const { key } = store.locate(record.xid);
    const stuckKey = `${prefix}{b0}:stuck:test`;
    // An older release's update to version 2: a new dueAt in the index, the mark left at version 1.
    const olderWrite = { ...record, version: 2, dueAt: record.dueAt + 1_000 };
    await redis.client.hset(key, 'v', '2', 'r', JSON.stringify(olderWrite));
    await redis.client.zadd(stuckKey, olderWrite.dueAt, record.xid);
    // Back to the first dueAt, which is what the stale mark names.
    const back = { ...olderWrite, version: 3, dueAt: record.dueAt };
    await store.update(back, 2);
    expect(await redis.client.zscore(stuckKey, record.xid)).toBe(String(record.dueAt));
    const page = await store.findStuck({ domain: 'test', dueBefore: record.dueAt + 1, limit: 10 });
    expect(page.records).toStrictEqual([back]);
  });

  it('does not trust a mark of an earlier version when the record is parked or removed', async () => {
    const { store, prefix } = open();
    const record = makeRecord({ dueAt: past() });
    const stuckKey = `${prefix}{b0}:stuck:test`;
    await store.create(makeRecord({ ...record, parkedAt: Date.now() }));
    const { key } = store.locate(record.xid);
    expect(await redis.client.hget(key, 's')).toBe('1:');
    // An older release's update unparks it (version 2, entry written), the mark stays '1:'.
    await redis.client.hset(key, 'v', '2', 'r', JSON.stringify({ ...record, version: 2 }));
    await redis.client.zadd(stuckKey, record.dueAt, record.xid);
    await store.remove(record.xid, 2);
    expect(await redis.client.zcard(stuckKey)).toBe(0);
  });
});
