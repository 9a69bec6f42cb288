import { randomUUID } from 'node:crypto';
import { describeStorageConformance, makeRecord } from '@tcc/core/testing';
import { RedisStorage, ReplicationTimeoutError } from '@tcc/storage-redis';
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RedisServers, startCluster } from '../../../test/support/redis-servers.js';
import { raceWriters } from './support.js';

let servers: RedisServers;
const clients: Cluster[] = [];
let n = 0;

function newCluster(): Cluster {
  const cluster = new Cluster(
    servers.servers.map((s) => ({ host: s.host, port: s.port })),
    { redisOptions: { maxRetriesPerRequest: 1 } },
  );
  cluster.on('error', () => {});
  clients.push(cluster);
  return cluster;
}

beforeAll(async () => {
  servers = await startCluster(3);
  newCluster();
});
afterAll(async () => {
  for (const c of clients) c.disconnect();
  await servers?.stop();
});

describeStorageConformance('Redis Cluster (3 masters)', {
  create: async () => new RedisStorage({ client: clients[0]!, prefix: `t${n++}:` }),
});

describe('RedisStorage on Redis Cluster', () => {
  it('spreads the buckets over the three masters', async () => {
    const store = new RedisStorage({ client: clients[0]!, prefix: `spread${n++}:` });
    const records = Array.from({ length: 64 }, () => makeRecord());
    await Promise.all(records.map((r) => store.create(r)));
    const masters = clients[0]!.nodes('master');
    expect(masters).toHaveLength(3);
    const sizes = await Promise.all(masters.map((m) => m.dbsize()));
    for (const size of sizes) expect(size).toBeGreaterThan(0);
  });

  it('lets exactly one of 8 writers on their own cluster connections win each CAS round', async () => {
    const prefix = `race${n++}:`;
    const stores = Array.from({ length: 8 }, () => new RedisStorage({ client: newCluster(), prefix }));
    const { winners, final } = await raceWriters(stores, makeRecord({ xid: randomUUID() }), 20);
    expect(winners).toEqual(Array(20).fill(1));
    expect(await stores[5]!.get(final.xid)).toStrictEqual(final);
  });

  it('sends WAIT to the node of the key (no replicas here: ReplicationTimeoutError)', async () => {
    const store = new RedisStorage({
      client: clients[0]!,
      prefix: `wait${n++}:`,
      replicas: 1,
      replicaTimeoutMs: 20,
    });
    const record = makeRecord();
    const error = await store.create(record).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ReplicationTimeoutError);
    expect(error).toMatchObject({ acknowledged: 0, required: 1 });
    // WAIT went to the key's own node: the write is there (a WAIT elsewhere would be a CROSSSLOT-
    // free command on another master and could not have seen this write's replication offset).
    expect((await new RedisStorage({ client: clients[0]!, prefix: store.prefix }).get(record.xid))?.xid).toBe(
      record.xid,
    );
  });

  it('moves a record between domain indexes when an update changes its domain', async () => {
    const store = new RedisStorage({ client: clients[0]!, prefix: `dom${n++}:` });
    const record = makeRecord({ domain: 'a', createdAt: Date.now() - 60_000 });
    await store.create(record);
    await store.update({ ...record, domain: 'b', version: 2 }, 1);
    const query = { dueBefore: Date.now(), limit: 10 };
    expect((await store.findStuck({ ...query, domain: 'a' })).records).toEqual([]);
    expect((await store.findStuck({ ...query, domain: 'b' })).records.map((r) => r.xid)).toEqual([
      record.xid,
    ]);
    expect(await store.count({ domain: 'a' })).toBe(0);
    expect(await store.count({ domain: 'b' })).toBe(1);
    await store.remove(record.xid, 2);
    expect(await store.count({})).toBe(0);
  });
});
