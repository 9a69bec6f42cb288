import { describeStorageConformance, makeRecord } from '@tcc/core/testing';
import { RedisStorage } from '@tcc/storage-redis';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RedisServers, startStandalone } from '../../../test/support/redis-servers.js';

let servers: RedisServers;
let clients: Redis[] = [];
let n = 0;

beforeAll(async () => {
  servers = await startStandalone(3);
  clients = servers.servers.map((s) => {
    const client = new Redis({ host: s.host, port: s.port, maxRetriesPerRequest: 1 });
    client.on('error', () => {});
    return client;
  });
});
afterAll(async () => {
  for (const c of clients) c.disconnect();
  await servers?.stop();
});

describeStorageConformance('Redis, 3 client-side shards', {
  create: async () => new RedisStorage({ clients, prefix: `t${n++}:` }),
});

describe('client-side shards', () => {
  it('puts each record on the shard locate() names, and spreads them over all three', async () => {
    const store = new RedisStorage({ clients, prefix: `spread${n++}:` });
    const records = Array.from({ length: 60 }, () => makeRecord());
    await Promise.all(records.map((r) => store.create(r)));
    const perShard = new Map<string, number>();
    for (const r of records) {
      const { shard, key } = store.locate(r.xid);
      perShard.set(shard, (perShard.get(shard) ?? 0) + 1);
      const client = clients.find((c) => `${c.options.host}:${c.options.port}` === shard)!;
      expect(await client.exists(key)).toBe(1);
    }
    expect(perShard.size).toBe(3);
  });
});
