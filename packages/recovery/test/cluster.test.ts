import { InvalidOptionError, Tcc } from '@tcc/core';
import { makeRecord } from '@tcc/core/testing';
import { RedisStorage } from '@tcc/storage-redis';
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RedisServers, startCluster } from '../../../test/support/redis-servers.js';
import { RecoveryWorker } from '../src/index.js';
import { crashAndDrain } from './drain-scenario.js';
import { buildRecovery } from './support.js';

let servers: RedisServers;
let client: Cluster;

beforeAll(async () => {
  [servers] = await Promise.all([startCluster(3), buildRecovery()]);
  client = new Cluster(
    servers.servers.map((s) => ({ host: s.host, port: s.port })),
    { redisOptions: { maxRetriesPerRequest: 3 } },
  );
});
afterAll(async () => {
  client?.disconnect();
  await servers?.stop();
});

describe('Redis Cluster', () => {
  it('crash after the commit point, 3 workers, one SIGKILLed: all confirmed once, failing one parked', async () => {
    const prefix = 'tcc-cluster-drain:';
    const storage = new RedisStorage({ client, prefix });
    await crashAndDrain({
      env: {
        TCC_TEST_PREFIX: prefix,
        TCC_TEST_CLUSTER: servers.servers.map((s) => `${s.host}:${s.port}`).join(','),
      },
      prefix,
      storage,
      client,
      transactions: 200,
      workers: 3,
      killOne: true,
      concurrency: 8,
    });
  }, 180_000);

  it('refuses a prefix without a hash tag, and writes nothing', async () => {
    const storage = new RedisStorage({ client, prefix: 'tcc-cluster-refuse:' });
    await storage.create(makeRecord({ domain: 'shop', status: 'CONFIRMING', updatedAt: 0 }));
    const queueClient = new Cluster(
      servers.servers.map((s) => ({ host: s.host, port: s.port })),
      { redisOptions: { maxRetriesPerRequest: null }, lazyConnect: true },
    );
    const tcc = new Tcc({ domain: 'shop', storage });
    expect(() => new RecoveryWorker({ tcc, connection: queueClient, prefix: 'tcc-q' })).toThrow(
      InvalidOptionError,
    );
    expect(() => new RecoveryWorker({ tcc, connection: queueClient, prefix: 'tcc-q' })).toThrow(
      /on Redis Cluster the prefix must contain a hash tag such as "\{tcc\}", got "tcc-q"/,
    );
    // Nothing connected, nothing written: the cluster holds only the store's keys.
    expect(queueClient.status).toBe('wait');
    const keys = (await Promise.all(client.nodes('master').map((n) => n.keys('tcc-q*')))).flat();
    expect(keys).toEqual([]);
    queueClient.disconnect();
  });
});
