import { makeRecord } from '@tcc/core/testing';
import { RedisStorage } from '@tcc/storage-redis';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RedisServers, startStandalone } from '../../../test/support/redis-servers.js';

/*
 * How the store sends its batch script (`batch-n.lua`): on a server of its own, whose script
 * cache starts empty and whose `INFO` counts only this file's commands.
 */

let set: RedisServers;
let admin: Redis;
const clients: Redis[] = [];

beforeAll(async () => {
  set = await startStandalone(1);
  admin = connect();
});
afterAll(async () => {
  for (const client of clients) client.disconnect();
  await set?.stop();
});

/** `reconnectOnError` is shown every error reply; returning false, it only looks. */
function connect(reconnectOnError: (error: Error) => boolean = () => false): Redis {
  const { host, port } = set.servers[0]!;
  const client = new Redis({ host, port, maxRetriesPerRequest: 1, reconnectOnError });
  clients.push(client);
  return client;
}

/** `{ eval: 2, evalsha: 3 }`: calls since the last `CONFIG RESETSTAT`, refused ones included. */
async function scriptCalls(): Promise<{ eval: number; evalsha: number; noscript: number }> {
  const stats = await admin.info('commandstats');
  const errors = await admin.info('errorstats');
  const calls = (name: string) =>
    Number(new RegExp(`^cmdstat_${name}:calls=(\\d+)`, 'm').exec(stats)?.[1] ?? 0);
  const noscript = Number(/^errorstat_NOSCRIPT:count=(\d+)/m.exec(errors)?.[1] ?? 0);
  return { eval: calls('eval'), evalsha: calls('evalsha'), noscript };
}

/** The name each batch script was written under (chosen as it is written: read afterwards). */
function batchNames(client: Redis): string[] {
  const names: string[] = [];
  const sendCommand = client.sendCommand;
  client.sendCommand = function (this: Redis, command, ...rest) {
    const result = sendCommand.call(this, command, ...rest);
    // A lone write's script has at most 10 arguments; a batch of two or more, 18 or more.
    if (command.args.length > 12) names.push(command.name);
    return result;
  } as typeof client.sendCommand;
  return names;
}

let n = 0;
const nextPrefix = () => `batch-script:${n++}:`;

describe('the batch script', () => {
  it('is sent as text once per connection (and reconnection), then by its SHA, never refused NOSCRIPT', async () => {
    const refused: string[] = [];
    const noting = (error: Error) => {
      refused.push(error.message);
      return false;
    };
    const prefix = nextPrefix();
    const first = connect(noting);
    const names = batchNames(first);
    const store = new RedisStorage({ client: first, prefix });
    await store.migrate();
    await admin.config('RESETSTAT');
    const records = Array.from({ length: 6 }, () => makeRecord());

    await Promise.all(records.slice(0, 3).map((r) => store.create(r)));
    await Promise.all(records.slice(3).map((r) => store.create(r)));
    expect(names).toEqual(['eval', 'evalsha']);

    // Another connection has not been sent the text: it sends it too.
    const second = connect(noting);
    const againNames = batchNames(second);
    const again = new RedisStorage({ client: second, prefix });
    await Promise.all(records.map((r) => again.update({ ...r, version: 2, retries: 1 }, 1)));
    expect(againNames).toEqual(['eval']);

    // A reconnection is a new socket: the text again, then the SHA.
    second.disconnect(true);
    await new Promise((resolve) => second.once('ready', resolve));
    await Promise.all(records.slice(0, 3).map((r) => again.update({ ...r, version: 3, retries: 2 }, 2)));
    await Promise.all(records.slice(3).map((r) => again.update({ ...r, version: 3, retries: 2 }, 2)));
    expect(againNames).toEqual(['eval', 'eval', 'evalsha']);

    // The server never had to refuse a batch it did not know, so no client saw NOSCRIPT.
    expect(await scriptCalls()).toMatchObject({ eval: 3, evalsha: 2, noscript: 0 });
    expect(refused).toEqual([]);
    for (const r of records) expect(await store.get(r.xid)).toStrictEqual({ ...r, version: 3, retries: 2 });
  });

  it('is sent again as text when the server lost it, every write of the batches in flight applied once', async () => {
    const client = connect();
    const names = batchNames(client);
    const store = new RedisStorage({ client, prefix: nextPrefix() });
    await store.migrate();
    await Promise.all([store.create(makeRecord()), store.create(makeRecord())]);
    expect(names).toEqual(['eval']);
    // The scripts are gone from the server; the client still thinks it has them.
    await admin.script('FLUSH');
    await admin.config('RESETSTAT');
    const records = Array.from({ length: 40 }, () => makeRecord());

    // 40 writes of one tick: three batch scripts in flight at once, each refused.
    await Promise.all(records.map((r) => store.create(r)));

    const calls = await scriptCalls();
    expect(calls.noscript).toBe(3);
    expect(calls.evalsha).toBeGreaterThanOrEqual(3);
    // Sent again, the text at least once (each refusal is read apart or with the others).
    expect(calls.eval).toBeGreaterThanOrEqual(1);
    expect(calls.eval + calls.evalsha).toBe(6);
    for (const r of records) expect(await store.get(r.xid)).toStrictEqual(r);
    expect(await store.count({})).toBe(42);
  });
});
