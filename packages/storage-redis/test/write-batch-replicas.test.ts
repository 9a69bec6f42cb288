import { ReplicationTimeoutError } from '@tcc/core';
import { makeRecord } from '@tcc/core/testing';
import { RedisStorage } from '@tcc/storage-redis';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type RedisServers,
  startReplica,
  startStandalone,
  until,
} from '../../../test/support/redis-servers.js';
import { MAX_BATCH_WRITES } from '../src/write-batch.js';

/*
 * A store with `replicas` batches its writes too, one `WAIT` per batch script: on a server
 * of its own, so that `INFO commandstats` counts only this file's commands.
 */

let set: RedisServers;
let primary: Redis;

beforeAll(async () => {
  set = await startStandalone(1);
  const { host, port } = set.servers[0]!;
  primary = new Redis({ host, port, maxRetriesPerRequest: 1 });
});
afterAll(async () => {
  primary?.disconnect();
  await set?.stop();
});

/** Calls per command since the last `CONFIG RESETSTAT`, e.g. `{ evalsha: 1, wait: 1 }`. */
async function commandCalls(): Promise<Record<string, number>> {
  const info = await primary.info('commandstats');
  const calls: Record<string, number> = {};
  for (const match of info.matchAll(/^cmdstat_([a-z|]+):calls=(\d+)/gm)) calls[match[1]!] = Number(match[2]);
  return calls;
}

/** Scripts run as such (a first use on a connection is `EVAL`, later ones `EVALSHA`). */
function scripts(calls: Record<string, number>): number {
  return (calls.eval ?? 0) + (calls.evalsha ?? 0);
}

let n = 0;
const newStore = (replicaTimeoutMs: number) =>
  new RedisStorage({ client: primary, prefix: `batch-replicas:${n++}:`, replicas: 1, replicaTimeoutMs });

describe('writes of one tick on a store that requires replicas', () => {
  it('with none acknowledging, each applied write rejects with the ReplicationTimeoutError of its transaction', async () => {
    const store = newStore(50);
    await store.migrate();
    const stored = makeRecord();
    await store.create(stored).catch(() => undefined);
    const records = Array.from({ length: 5 }, () => makeRecord());
    await primary.config('RESETSTAT');

    const outcomes = await Promise.allSettled([
      ...records.map((r) => store.create(r)),
      // Nothing written, nothing to wait for: a lost compare-and-set stays what it is.
      store.update({ ...stored, version: 3 }, 2),
    ]);

    const calls = await commandCalls();
    expect(scripts(calls)).toBe(1);
    expect(calls.wait).toBe(1);
    for (const [i, outcome] of outcomes.slice(0, 5).entries()) {
      const error = (outcome as PromiseRejectedResult).reason;
      expect(error).toBeInstanceOf(ReplicationTimeoutError);
      expect(error).toMatchObject({ code: 'TCC_REPLICATION_TIMEOUT', acknowledged: 0, required: 1 });
      expect((error as Error).message).toContain(records[i]!.xid);
    }
    expect(outcomes[5]).toMatchObject({ status: 'rejected', reason: { code: 'TCC_OPTIMISTIC_LOCK' } });
    // Outcome unknown, not failed: the primary applied each write.
    const plain = new RedisStorage({ client: primary, prefix: store.prefix });
    for (const r of records) expect(await plain.get(r.xid)).toStrictEqual(r);
  });

  it('with a replica in step, resolve after one WAIT per batch script', async () => {
    const replica = await startReplica(set, set.servers[0]!);
    await until('the replica is in step', async () =>
      /connected_slaves:1\b[\s\S]*state=online/.test(await primary.info('replication')),
    );
    const store = newStore(10_000);
    await store.migrate();
    const records = Array.from({ length: MAX_BATCH_WRITES + 4 }, () => makeRecord());
    await primary.config('RESETSTAT');

    await Promise.all(records.map((r) => store.create(r)));

    const calls = await commandCalls();
    expect(scripts(calls)).toBe(2);
    expect(calls.wait).toBe(2);
    const onReplica = new Redis({ host: replica.host, port: replica.port, maxRetriesPerRequest: 1 });
    try {
      const reader = new RedisStorage({ client: onReplica, prefix: store.prefix });
      // WAIT answered: the replica has every write.
      for (const r of records) expect(await reader.get(r.xid)).toStrictEqual(r);
    } finally {
      onReplica.disconnect();
    }
  });
});
