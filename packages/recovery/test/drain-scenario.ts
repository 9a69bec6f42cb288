import { ConfirmFailedError, Tcc } from '@tcc/core';
import type { RedisStorage } from '@tcc/storage-redis';
import type { Cluster, Redis } from 'ioredis';
import { expect } from 'vitest';
import { type Child, CRASH_APP, SHOP_CONFIG, startChild, startWorker, tccCli, until } from './support.js';

export interface DrainSetup {
  /** Environment of every spawned process: prefix, Redis address, timings. */
  readonly env: NodeJS.ProcessEnv;
  readonly prefix: string;
  readonly storage: RedisStorage;
  readonly client: Redis | Cluster;
  readonly transactions: number;
  readonly workers: number;
  /** SIGKILL the first worker once a tenth of the confirms are applied. */
  readonly killOne: boolean;
  /** Concurrency of each worker (bounds what a killed worker can have left half done). */
  readonly concurrency: number;
}

/**
 * The crash-and-drain scenario of the issue: a service SIGKILLed after the commit point of every
 * one of `transactions` transactions (pay + ship, none confirmed), plus one transaction whose
 * confirm always fails; then `workers` worker processes. Ends when every good transaction is
 * confirmed and gone from the store and the bad one is parked; stops the workers with SIGTERM.
 */
export async function crashAndDrain(setup: DrainSetup): Promise<void> {
  const { env, storage, client, transactions: n, prefix } = setup;
  const processEnv = { ...env, TCC_TEST_CONCURRENCY: String(setup.concurrency) };
  // The crashing app drives all its transactions at once on a machine that may be loaded: a
  // lease of 300 ms can lapse between its commit point and its first confirm, and a driver whose
  // claim lapsed stops (correctly) before the crash the test stages. Its claims lapse 3 s after
  // the SIGKILL instead, which the workers then wait out.
  const app = startChild(CRASH_APP, [], {
    ...processEnv,
    TCC_TEST_CRASH_AFTER: String(n),
    TCC_TEST_RECOVER_AFTER: '3000',
  });
  await app.waitFor('ALL-AT-COMMIT-POINT');
  await app.kill('SIGKILL');
  expect(await storage.count({ domain: 'shop', status: 'CONFIRMING' })).toBe(n);

  // A transaction whose confirm always fails, begun here with the same store.
  const tcc = new Tcc({ domain: 'shop', storage, recovery: { recoverAfterMs: 300 } });
  const broken = tcc.compensable('shop.broken', {
    try: async (_id: string) => {},
    confirm: async () => {
      throw new Error('the warehouse is on fire');
    },
    cancel: async () => {},
  });
  let brokenXid = '';
  await expect(
    tcc.transaction(async () => {
      brokenXid = tcc.current()!.xid;
      await broken('order-broken');
    }),
  ).rejects.toBeInstanceOf(ConfirmFailedError);

  const applied = `${prefix}{fx}:applied`;
  const calls = `${prefix}{fx}:calls`;
  const workers: Child[] = [];
  for (let i = 0; i < setup.workers; i++)
    workers.push(startWorker({ ...processEnv, TCC_TEST_CONFIRM_DELAY: '10' }));
  try {
    let killedAt: number | undefined;
    if (setup.killOne) {
      await until('a tenth of the confirms', async () => (await client.hlen(applied)) >= n / 5);
      await workers[0]!.kill('SIGKILL');
      killedAt = await client.hlen(applied);
      // Killed mid-drain: confirms were still left for the others.
      expect(killedAt).toBeLessThan(2 * n);
    }
    await until(
      'every good transaction confirmed and the broken one parked',
      async () => {
        if ((await client.hlen(applied)) < 2 * n) return false;
        const left = await storage.list({ domain: 'shop' });
        return left.records.length === 1 && left.records[0]!.parkedAt !== undefined;
      },
      60_000,
    ).catch((error: unknown) => {
      throw new Error(`${(error as Error).message}\n${workers.map((w) => w.output()).join('\n---\n')}`);
    });

    // Each participant's confirm effect applied exactly once, nothing cancelled.
    const effects = await client.hgetall(applied);
    const expected = Array.from({ length: n }, (_, i) => [
      `pay.confirm:order-${i}`,
      `ship.confirm:order-${i}`,
    ]).flat();
    expect(Object.keys(effects).sort()).toEqual(expected.sort());
    const counted = Object.entries(await client.hgetall(calls)).map(([k, v]) => [k, Number(v)] as const);
    expect(counted.filter(([k]) => k.includes('cancel'))).toEqual([]);
    const repeated = counted.filter(([, c]) => c > 1);
    if (setup.killOne) {
      // Only the records the killed worker had in hand (at most `concurrency`) can have had a
      // confirm called again (their effect still applied once).
      const records = new Set(repeated.map(([k]) => k.split(':')[1]));
      expect(records.size).toBeLessThanOrEqual(setup.concurrency);
    } else {
      // No worker died: the compare-and-set kept every record to one driver.
      expect(repeated).toEqual([]);
    }

    // The store holds nothing but the parked record, which keeps its status.
    const left = await storage.list({ domain: 'shop' });
    expect(left.records.map((r) => r.xid)).toEqual([brokenXid]);
    expect(left.records[0]).toMatchObject({ status: 'CONFIRMING', retries: 3 });
    expect(left.records[0]!.lastError).toMatch(/warehouse is on fire/);

    const listed = await tccCli(['ls', '--parked', '--json', '--config', SHOP_CONFIG], env);
    expect(listed.code, listed.stderr).toBe(0);
    const parked = JSON.parse(listed.stdout) as { xid: string; parkedAt?: number }[];
    expect(parked.map((r) => r.xid)).toEqual([brokenXid]);
    expect(parked[0]!.parkedAt).toBeTypeOf('number');
  } finally {
    // SIGTERM drains and closes: a clean exit, not a kill.
    const codes = await Promise.all(workers.map((w) => w.kill('SIGTERM')));
    const alive = setup.killOne ? codes.slice(1) : codes;
    expect(alive).toEqual(alive.map(() => 0));
  }
}
