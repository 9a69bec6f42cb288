import { RedisStorage } from '@tcc/storage-redis';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { openRedis, type RedisHarness } from '../../../test/support/redis.js';
import { crashAndDrain } from './drain-scenario.js';
import { buildRecovery } from './support.js';

let redis: RedisHarness;

beforeAll(async () => {
  await buildRecovery();
  redis = await openRedis();
});
afterAll(async () => {
  await redis?.end();
});

describe('crash after the commit point, then worker processes drain (Redis)', () => {
  it('200 transactions, 3 workers, one SIGKILLed mid-drain: all confirmed once, failing one parked', async () => {
    const prefix = redis.prefix();
    const storage = new RedisStorage({ client: redis.client, prefix });
    await crashAndDrain({
      env: { TCC_TEST_PREFIX: prefix, REDIS_URL: redis.url },
      prefix,
      storage,
      client: redis.client,
      transactions: 200,
      workers: 3,
      killOne: true,
      concurrency: 8,
    });
  }, 180_000);
});
