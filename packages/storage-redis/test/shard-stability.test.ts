import { randomUUID } from 'node:crypto';
import { RedisStorage } from '@tcc/storage-redis';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';

// Clients that never connect: locate() is pure hashing.
const clients = ['a', 'b', 'c', 'd'].map((id) => ({
  id: `shard-${id}`,
  client: new Redis({ lazyConnect: true, host: '127.0.0.1', port: 1 }),
}));
afterAll(() => {
  for (const { client } of clients) client.disconnect();
});

describe('rendezvous sharding', () => {
  const xids = Array.from({ length: 20_000 }, () => randomUUID());

  it('moves about a quarter of the xids, all to the new shard, when a 4th shard is added', () => {
    const three = new RedisStorage({ clients: clients.slice(0, 3) });
    const four = new RedisStorage({ clients });
    let moved = 0;
    for (const xid of xids) {
      const before = three.locate(xid);
      const after = four.locate(xid);
      if (before.shard !== after.shard) {
        moved++;
        expect(after.shard).toBe('shard-d');
      }
      expect(after.key).toBe(before.key); // buckets do not depend on the shard list
    }
    const fraction = moved / xids.length;
    expect(fraction).toBeGreaterThan(0.2);
    expect(fraction).toBeLessThan(0.3);
  });

  it('does not depend on the order of the shard list, and spreads evenly', () => {
    const forward = new RedisStorage({ clients });
    const backward = new RedisStorage({ clients: [...clients].reverse() });
    const counts = new Map<string, number>();
    for (const xid of xids) {
      const { shard } = forward.locate(xid);
      expect(backward.locate(xid).shard).toBe(shard);
      counts.set(shard, (counts.get(shard) ?? 0) + 1);
    }
    for (const count of counts.values()) expect(count / xids.length).toBeGreaterThan(0.2);
  });
});
