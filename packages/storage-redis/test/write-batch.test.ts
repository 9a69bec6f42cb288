import { randomUUID } from 'node:crypto';
import type { TransactionRecord } from '@tcc/core';
import { makeRecord } from '@tcc/core/testing';
import { RedisStorage } from '@tcc/storage-redis';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRedis, type RedisHarness } from '../../../test/support/redis.js';
import { MAX_BATCH_WRITES } from '../src/write-batch.js';

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

/** Names every command the client sends (scripts by the ioredis name they were defined under). */
function recordCommands(client: Redis): string[] {
  const names: string[] = [];
  const sendCommand = client.sendCommand;
  client.sendCommand = function (this: Redis, command, ...rest) {
    names.push(
      command.name === 'evalsha' || command.name === 'eval' ? `script:${command.args.length}` : command.name,
    );
    return sendCommand.call(this, command, ...rest);
  } as typeof client.sendCommand;
  return names;
}

async function openStore(): Promise<{ client: Redis; store: RedisStorage }> {
  const client = await redis.newClient();
  const store = new RedisStorage({ client, prefix: redis.prefix() });
  // Once first, so that the marker is checked and nothing but writes is sent below.
  await store.migrate();
  return { client, store };
}

const DAY = 86_400_000;

describe('writes of one tick on a standalone client', () => {
  it('leave in one socket write, each answered by its own reply', async () => {
    const client = await redis.newClient();
    const store = new RedisStorage({ client, prefix: redis.prefix() });
    // Once first, so that a script the server does not have yet (NOSCRIPT, then EVAL) is loaded.
    await store.create(makeRecord());
    const writes = countSocketWrites(client.stream);
    // More than one batch script's worth: those scripts still share one socket write.
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

  it('go as one script, each write answered as its own script would be', async () => {
    const { client, store } = await openStore();
    const live = makeRecord();
    const stale = makeRecord();
    const done = makeRecord();
    const gone = makeRecord();
    for (const r of [live, stale, done, gone]) await store.create(r);
    const fresh = makeRecord();
    const commands = recordCommands(client);

    const next = (r: TransactionRecord, changes: Partial<TransactionRecord> = {}): TransactionRecord => ({
      ...r,
      version: r.version + 1,
      retries: r.retries + 1,
      ...changes,
    });
    const finished = next(done, { status: 'CONFIRMED', expiresAt: Date.now() + DAY });
    const outcomes = await Promise.allSettled([
      store.create(fresh),
      store.create(live),
      store.update(next(live), 1),
      store.update(next(stale, { version: 8 }), 7),
      store.update(next(makeRecord()), 1),
      store.complete(finished, 1),
      store.remove(gone.xid, 1),
    ]);

    expect(commands).toHaveLength(1);
    expect(
      outcomes.map((o) => (o.status === 'fulfilled' ? 'ok' : (o.reason as { code: string }).code)),
    ).toEqual([
      'ok',
      'TCC_DUPLICATE_TRANSACTION',
      'ok',
      'TCC_OPTIMISTIC_LOCK',
      'TCC_OPTIMISTIC_LOCK',
      'ok',
      'ok',
    ]);
    // The lost compare-and-sets say what they met, as their own scripts would.
    expect((outcomes[3] as PromiseRejectedResult).reason.message).toContain(
      'expected version 7 but found version 1',
    );
    expect((outcomes[4] as PromiseRejectedResult).reason.message).toContain('the record does not exist');
    expect(await store.get(fresh.xid)).toStrictEqual(fresh);
    expect(await store.get(live.xid)).toStrictEqual(next(live));
    expect(await store.get(stale.xid)).toStrictEqual(stale);
    expect(await store.get(done.xid)).toStrictEqual(finished);
    expect(await store.get(gone.xid)).toBeUndefined();
    expect(await store.count({})).toBe(4);
  });

  it(`go as several scripts when more than ${MAX_BATCH_WRITES} are made at once`, async () => {
    const { client, store } = await openStore();
    const commands = recordCommands(client);
    const records = Array.from({ length: 2 * MAX_BATCH_WRITES + 1 }, () => makeRecord());
    await Promise.all(records.map((r) => store.create(r)));
    expect(commands).toHaveLength(3);
    expect(await store.count({})).toBe(records.length);
    expect(await Promise.all(records.map((r) => store.get(r.xid)))).toStrictEqual(records);
  });

  it('fail one by one: a write that fails does not take the others with it', async () => {
    const { client, store } = await openStore();
    const records = Array.from({ length: 5 }, () => makeRecord());
    for (const r of records) await store.create(r);
    // Something else wrote a string where the third record's hash is.
    const spoiled = records[2]!;
    await client.set(store.locate(spoiled.xid).key, 'not a hash');
    const commands = recordCommands(client);

    const outcomes = await Promise.allSettled(records.map((r) => store.update({ ...r, version: 2 }, 1)));

    expect(commands).toHaveLength(1);
    expect(outcomes.map((o) => o.status)).toEqual([
      'fulfilled',
      'fulfilled',
      'rejected',
      'fulfilled',
      'fulfilled',
    ]);
    const failure = (outcomes[2] as PromiseRejectedResult).reason as Error;
    expect(failure).toMatchObject({ code: 'TCC_STORAGE' });
    expect(failure.message).toContain(`redis update of transaction ${spoiled.xid} on`);
    expect(failure.message).toContain('WRONGTYPE');
    for (const r of records) {
      if (r !== spoiled) expect(await store.get(r.xid)).toStrictEqual({ ...r, version: 2 });
    }
    expect(await client.get(store.locate(spoiled.xid).key)).toBe('not a hash');
  });

  it('all fail, each naming its transaction, when their script cannot be sent; nothing is written', async () => {
    const { client, store } = await openStore();
    const records = Array.from({ length: 4 }, () => makeRecord());
    const writes = records.map((r) => store.create(r));
    // Closed after the writes were queued, before the end of the tick sends them.
    client.disconnect();
    const outcomes = await Promise.allSettled(writes);
    for (const [i, outcome] of outcomes.entries()) {
      expect(outcome.status).toBe('rejected');
      const error = (outcome as PromiseRejectedResult).reason as Error;
      expect(error).toMatchObject({ code: 'TCC_STORAGE' });
      expect(error.message).toContain(`redis create of transaction ${records[i]!.xid} on`);
      expect(error.message).toContain('Connection is closed');
    }
    const reader = new RedisStorage({ client: await redis.newClient(), prefix: store.prefix });
    expect(await reader.count({})).toBe(0);
  });

  describe.each([
    ['a client', {}],
    ['a client with enableAutoPipelining', { enableAutoPipelining: true }],
  ])('on %s', (_, options) => {
    async function open(): Promise<{ client: Redis; store: RedisStorage }> {
      const client = await redis.newClient(options);
      const store = new RedisStorage({ client, prefix: redis.prefix() });
      await store.migrate();
      return { client, store };
    }

    it('are sent before a read made after them in the same tick, which sees them', async () => {
      const { client, store } = await open();
      const commands = recordCommands(client);
      const [a, b] = [makeRecord(), makeRecord()];
      const [, , read] = await Promise.all([store.create(a), store.create(b), store.get(b.xid)]);
      expect(read).toStrictEqual(b);
      const next = (r: TransactionRecord) => ({ ...r, version: 2, retries: 1 });
      const [, , again, listed] = await Promise.all([
        store.update(next(a), 1),
        store.update(next(b), 1),
        store.get(a.xid),
        store.list({ limit: 10 }),
      ]);
      expect(again).toStrictEqual(next(a));
      expect(listed.records).toHaveLength(2);
      for (const r of listed.records) expect(r.version).toBe(2);
      // Each tick's two writes went as one batch script (two creates: 18 arguments with its
      // SHA, two updates: 20), each before the read made after them.
      expect(commands.slice(0, 4)).toEqual(['script:18', 'hmget', 'script:20', 'hmget']);
    });

    it('are sent after a read made before them in the same tick, which does not see them', async () => {
      const { client, store } = await open();
      const [a, b] = [makeRecord(), makeRecord()];
      await Promise.all([store.create(a), store.create(b)]);
      const commands = recordCommands(client);
      const next = (r: TransactionRecord) => ({ ...r, version: 2, retries: 1 });
      const [before, , , after] = await Promise.all([
        store.get(a.xid),
        store.update(next(a), 1),
        store.update(next(b), 1),
        store.get(a.xid),
      ]);
      expect(before).toStrictEqual(a);
      expect(after).toStrictEqual(next(a));
      expect(commands).toEqual(['hmget', 'script:20', 'hmget']);
    });
  });

  it('of several stores on one client share a script', async () => {
    const { client, store } = await openStore();
    const other = new RedisStorage({ client, prefix: redis.prefix() });
    await other.migrate();
    const commands = recordCommands(client);
    const mine = makeRecord();
    const theirs = makeRecord({ xid: randomUUID() });
    await Promise.all([store.create(mine), other.create(theirs)]);
    expect(commands).toHaveLength(1);
    expect(await store.get(theirs.xid)).toBeUndefined();
    expect(await other.get(theirs.xid)).toStrictEqual(theirs);
    expect(await store.get(mine.xid)).toStrictEqual(mine);
  });

  it.each([
    ['', false],
    [' (and enableAutoPipelining)', true],
  ])(
    'on a client with a keyPrefix%s, put every key of the batch under it',
    async (_, enableAutoPipelining) => {
      const keyPrefix = redis.prefix();
      const client = await redis.newClient({ keyPrefix, enableAutoPipelining });
      const store = new RedisStorage({ client, prefix: 'shop:' });
      await store.migrate();
      const records = Array.from({ length: 5 }, () => makeRecord());
      await Promise.all(records.map((r) => store.create(r)));
      await Promise.all(records.map((r) => store.update({ ...r, version: 2, retries: 1 }, 1)));

      const plain = await redis.newClient();
      for (const r of records) {
        expect(await plain.hget(`${keyPrefix}${store.locate(r.xid).key}`, 'v')).toBe('2');
        expect(await plain.exists(store.locate(r.xid).key)).toBe(0);
      }
      expect(await store.count({})).toBe(5);
      expect((await store.list({})).records.map((r) => r.version)).toEqual([2, 2, 2, 2, 2]);
    },
  );
});
