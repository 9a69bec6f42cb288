import { ReplicationTimeoutError, type TransactionRecord } from '@tcc/core';
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
/** The primary's replica, started for the tests that need one (after those that need none). */
let replica: { host: string; port: number } | undefined;

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

/** A replica in step acknowledges at once; the bound is only for a machine under heavy load. */
const ACKNOWLEDGED_WITHIN_MS = 60_000;
/** Each test's own limit: above the waits' bounds, so that they, not the runner, say what was slow. */
const SLOW_MACHINE_MS = 180_000;

/** Reads `records` back from the replica, through a store of `prefix` there. */
async function expectOnReplica(prefix: string, records: readonly TransactionRecord[]): Promise<void> {
  const onReplica = new Redis({ host: replica!.host, port: replica!.port, maxRetriesPerRequest: 1 });
  try {
    const reader = new RedisStorage({ client: onReplica, prefix });
    for (const r of records) expect(await reader.get(r.xid)).toStrictEqual(r);
  } finally {
    onReplica.disconnect();
  }
}

let n = 0;
const newStore = (replicaTimeoutMs: number) =>
  new RedisStorage({ client: primary, prefix: `batch-replicas:${n++}:`, replicas: 1, replicaTimeoutMs });

describe('writes of one tick on a store that requires replicas', () => {
  it(
    'with none acknowledging, each applied write rejects with the ReplicationTimeoutError of its transaction',
    async () => {
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
    },
    SLOW_MACHINE_MS,
  );
});

describe('writes of one tick on a store that requires replicas, with a replica in step', () => {
  beforeAll(async () => {
    replica = await startReplica(set, set.servers[0]!);
    await until(
      'the replica is in step',
      async () => /connected_slaves:1\b[\s\S]*state=online/.test(await primary.info('replication')),
      60_000,
    );
  }, SLOW_MACHINE_MS);

  it(
    'resolve after one WAIT per batch script',
    async () => {
      const store = newStore(ACKNOWLEDGED_WITHIN_MS);
      await store.migrate();
      const records = Array.from({ length: MAX_BATCH_WRITES + 4 }, () => makeRecord());
      await primary.config('RESETSTAT');

      await Promise.all(records.map((r) => store.create(r)));

      const calls = await commandCalls();
      expect(scripts(calls)).toBe(2);
      expect(calls.wait).toBe(2);
      // WAIT answered: the replica has every write.
      await expectOnReplica(store.prefix, records);
    },
    SLOW_MACHINE_MS,
  );

  it(
    'wait for the script sent again after the server lost it (NOSCRIPT), not before it',
    async () => {
      const store = newStore(ACKNOWLEDGED_WITHIN_MS);
      await store.migrate();
      // A batch of two: the batch script is sent (as text, once per connection) and loaded.
      await Promise.all([store.create(makeRecord()), store.create(makeRecord())]);
      // The scripts are gone from the server; the client still thinks it has them.
      await primary.script('FLUSH');
      await primary.config('RESETSTAT');
      const records = Array.from({ length: 5 }, () => makeRecord());

      await Promise.all(records.map((r) => store.create(r)));

      const calls = await commandCalls();
      expect(calls.evalsha).toBe(1); // refused: NOSCRIPT
      expect(calls.eval).toBe(1); // sent again with its source
      expect(calls.wait).toBe(1);
      await expectOnReplica(store.prefix, records);
    },
    SLOW_MACHINE_MS,
  );

  it(
    'on a read-only replica, fail as one script, so that the client sees READONLY',
    async () => {
      const seen: string[] = [];
      const client = new Redis({
        host: replica!.host,
        port: replica!.port,
        maxRetriesPerRequest: 1,
        // What a client behind a failover's DNS name does: reconnect on READONLY (here: only note it).
        reconnectOnError: (error) => {
          seen.push(error.message);
          return false;
        },
      });
      try {
        const store = new RedisStorage({ client, prefix: `batch-replicas:${n++}:` });
        await new RedisStorage({ client: primary, prefix: store.prefix }).migrate();
        await until(
          'the replica has the schema marker',
          async () => (await client.exists(`${store.prefix}meta`)) === 1,
          60_000,
        );
        const records = [makeRecord(), makeRecord()];

        const outcomes = await Promise.allSettled(records.map((r) => store.create(r)));

        for (const [i, outcome] of outcomes.entries()) {
          const error = (outcome as PromiseRejectedResult).reason as Error;
          expect(error).toMatchObject({ code: 'TCC_STORAGE' });
          expect(error.message).toContain(`redis create of transaction ${records[i]!.xid} on`);
          expect(error.message).toContain('READONLY');
        }
        expect(seen).toHaveLength(1);
        expect(seen[0]).toMatch(/^READONLY/);
        expect(await primary.exists(...records.map((r) => store.locate(r.xid).key))).toBe(0);
      } finally {
        client.disconnect();
      }
    },
    SLOW_MACHINE_MS,
  );
});
