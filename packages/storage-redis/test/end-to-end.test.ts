import { ConfirmFailedError, Tcc } from '@tcc/core';
import { CountingStorage } from '@tcc/core/testing';
import { RedisStorage } from '@tcc/storage-redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRedis, type RedisHarness } from '../../../test/support/redis.js';

let redis: RedisHarness;

beforeAll(async () => {
  redis = await openRedis();
});
afterAll(async () => {
  await redis?.end();
});

describe('a real Tcc on RedisStorage (standalone)', () => {
  function setup() {
    const redisStorage = new RedisStorage({ client: redis.client, prefix: redis.prefix() });
    const storage = new CountingStorage(redisStorage);
    const tcc = new Tcc({ domain: 'order', storage });
    const calls: string[] = [];
    let failConfirmOnce = false;
    const step = (name: string) =>
      tcc.compensable(name, {
        try: async (id: string) => {
          calls.push(`${name}.try:${id}`);
          if (id === 'overdrawn') throw new Error(`${name}: overdrawn`);
        },
        confirm: async (id: string) => {
          if (name === 'b' && failConfirmOnce) {
            failConfirmOnce = false;
            calls.push(`${name}.confirm!`);
            throw new Error('warehouse down');
          }
          calls.push(`${name}.confirm:${id}`);
        },
        cancel: async (id: string) => {
          calls.push(`${name}.cancel:${id}`);
        },
      });
    return {
      redisStorage,
      storage,
      tcc,
      calls,
      a: step('a'),
      b: step('b'),
      failNextConfirm: () => {
        failConfirmOnce = true;
      },
    };
  }

  it('confirms both participants in k + 2 writes and leaves nothing behind', async () => {
    const { storage, tcc, calls, a, b } = setup();
    await tcc.transaction(async () => {
      await a('1');
      await b('1');
    });
    expect(calls).toEqual(['a.try:1', 'b.try:1', 'a.confirm:1', 'b.confirm:1']);
    expect(storage.writes, storage.log.join(', ')).toBe(2 + 2);
    expect(storage.log).toEqual(['create TRYING', 'update TRYING', 'update CONFIRMING', 'remove']);
    expect(await storage.count({})).toBe(0);
    await tcc.stop();
  });

  it('cancels the tries when one fails, and leaves nothing behind', async () => {
    const { storage, tcc, calls, a, b } = setup();
    await expect(
      tcc.transaction(async () => {
        await a('1');
        await b('overdrawn');
      }),
    ).rejects.toThrow('b: overdrawn');
    expect(calls).toEqual(['a.try:1', 'b.try:overdrawn', 'b.cancel:overdrawn', 'a.cancel:1']);
    expect(await storage.count({})).toBe(0);
    await tcc.stop();
  });

  it('keeps a partly failed confirm CONFIRMING in Redis, and tcc.recover finishes only the rest', async () => {
    const { redisStorage, tcc, calls, a, b, failNextConfirm } = setup();
    failNextConfirm();
    const error = await tcc
      .transaction(async () => {
        await a('1');
        await b('1');
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfirmFailedError);

    const [record] = (await redisStorage.list({})).records;
    expect(record?.status).toBe('CONFIRMING');
    expect(record?.participants.map((p) => p.status)).toEqual(['CONFIRMED', 'TRYING']);
    expect(record?.lastError).toContain('warehouse down');
    const stuck = await redisStorage.findStuck({ domain: 'order', updatedBefore: Date.now() + 1, limit: 10 });
    expect(stuck.records.map((r) => r.xid)).toEqual([record!.xid]);

    const result = await tcc.recover(record!.xid, { force: true });
    expect(result.outcome).toBe('confirmed');
    expect(calls.filter((c) => c.includes('.confirm'))).toEqual(['a.confirm:1', 'b.confirm!', 'b.confirm:1']);
    expect(await redisStorage.count({})).toBe(0);
    expect(
      await redisStorage.findStuck({ domain: 'order', updatedBefore: Date.now() + 1, limit: 10 }),
    ).toEqual({
      records: [],
    });
    await tcc.stop();
  });
});
