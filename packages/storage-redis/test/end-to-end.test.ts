import { describeEndToEnd, describeSingleDriver } from '@tcc/core/testing';
import { RedisStorage } from '@tcc/storage-redis';
import { afterAll, beforeAll } from 'vitest';
import { openRedis, type RedisHarness } from '../../../test/support/redis.js';

let redis: RedisHarness;

beforeAll(async () => {
  redis = await openRedis();
});
afterAll(async () => {
  await redis?.end();
});

describeEndToEnd('RedisStorage (standalone)', {
  create: async () => new RedisStorage({ client: redis.client, prefix: redis.prefix() }),
});

describeSingleDriver('RedisStorage (standalone)', {
  create: async () => new RedisStorage({ client: redis.client, prefix: redis.prefix() }),
});
