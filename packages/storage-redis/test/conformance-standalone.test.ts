import { describeStorageConformance, makeRecord } from '@tcc/core/testing';
import { RedisStorage } from '@tcc/storage-redis';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRedis, type RedisHarness } from '../../../test/support/redis.js';
import { raceWriters } from './support.js';

let redis: RedisHarness;

beforeAll(async () => {
  redis = await openRedis();
});
afterAll(async () => {
  await redis?.end();
});

describeStorageConformance('Redis standalone', {
  create: async () => new RedisStorage({ client: redis.client, prefix: redis.prefix() }),
});

describeStorageConformance('Redis standalone, 1 bucket', {
  create: async () => new RedisStorage({ client: redis.client, prefix: redis.prefix(), buckets: 1 }),
});

describe('RedisStorage on standalone Redis', () => {
  it('pages through records that share one dueAt while a drain removes some of them meanwhile', async () => {
    for (const buckets of [1, 4]) {
      const store = new RedisStorage({ client: redis.client, prefix: redis.prefix(), buckets });
      const at = Date.now() - 60_000;
      const records = Array.from({ length: 1_000 }, () => makeRecord({ createdAt: at, updatedAt: at }));
      await Promise.all(records.map((r) => store.create(r)));
      const seen: string[] = [];
      let cursor: string | undefined;
      let draining: Promise<unknown> = Promise.resolve();
      do {
        const next = store.findStuck({
          domain: records[0]!.domain,
          dueBefore: Date.now(),
          limit: 20,
          ...(cursor === undefined ? {} : { cursor }),
        });
        const [page] = await Promise.all([next, draining]);
        seen.push(...page.records.map((r) => r.xid));
        // As recovery workers do, while the scan reads on: half of what was handed out is
        // finished (removed), the other half fails and stays.
        draining = Promise.all(
          page.records.filter((_, i) => i % 2 === 0).map((r) => store.remove(r.xid, r.version)),
        );
        cursor = page.cursor;
      } while (cursor !== undefined);
      await draining;
      expect(new Set(seen).size).toBe(seen.length);
      expect(seen.sort()).toEqual(records.map((r) => r.xid).sort());
    }
  });

  it('lets exactly one of 8 writers on their own connections win each CAS round', async () => {
    const prefix = redis.prefix();
    const clients: Redis[] = await Promise.all(Array.from({ length: 8 }, () => redis.newClient()));
    const stores = clients.map((client) => new RedisStorage({ client, prefix }));
    const { winners, final } = await raceWriters(stores, makeRecord(), 20);
    expect(winners).toEqual(Array(20).fill(1));
    expect(await stores[3]!.get(final.xid)).toStrictEqual(final);
  });

  it('writes the schema marker once and shares the key space between stores of one prefix', async () => {
    const prefix = redis.prefix();
    const a = new RedisStorage({ client: redis.client, prefix });
    await a.migrate();
    expect(JSON.parse((await redis.client.get(`${prefix}meta`))!)).toEqual({ schema: 1, buckets: 16 });
    const record = makeRecord();
    await a.create(record);
    const b = new RedisStorage({ client: redis.client, prefix });
    expect(await b.get(record.xid)).toStrictEqual(record);
    const { key } = b.locate(record.xid);
    expect(key).toMatch(new RegExp(`^${prefix}\\{b\\d+\\}:tx:${record.xid}$`));
    expect(await redis.client.hget(key, 'r')).toBe(JSON.stringify(record));
  });

  it('expires tombstones through PEXPIREAT', async () => {
    const prefix = redis.prefix();
    const store = new RedisStorage({ client: redis.client, prefix });
    const record = makeRecord({ status: 'CONFIRMING' });
    await store.create(record);
    const expiresAt = Date.now() + 60_000;
    await store.complete({ ...record, status: 'CONFIRMED', version: 2, expiresAt }, 1);
    const ttl = await redis.client.pexpiretime(store.locate(record.xid).key);
    expect(ttl).toBe(expiresAt);
  });

  it('drops an expired tombstone from the list and count indexes once Redis expired it', async () => {
    const prefix = redis.prefix();
    const store = new RedisStorage({ client: redis.client, prefix, buckets: 1 });
    // Far enough ahead that a busy machine still writes it before it expires; polled below.
    const record = makeRecord({ type: 'BRANCH', status: 'CANCELLED', expiresAt: Date.now() + 1_500 });
    await store.create(record);
    expect(await redis.client.zcard(`${prefix}{b0}:exp`)).toBe(1);
    await until(async () => (await redis.client.exists(store.locate(record.xid).key)) === 0);
    expect(await store.get(record.xid)).toBeUndefined();
    expect(await store.count({})).toBe(0);
    expect((await store.list({})).records).toEqual([]);
    for (const index of ['exp', 'all', 'dom:test'])
      expect(await redis.client.zcard(`${prefix}{b0}:${index}`)).toBe(0);
    expect(await redis.client.hlen(`${prefix}{b0}:expdom`)).toBe(0);
    // The xid is free again.
    await store.create(makeRecord({ xid: record.xid }));
    expect(await store.count({ status: 'TRYING' })).toBe(1);
  });
});

async function until(check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 3_000 && !(await check()); i++) await new Promise((r) => setTimeout(r, 10));
}
