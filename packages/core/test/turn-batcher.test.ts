import { type Batched, TurnBatcher } from '@tcc/core/storage';
import { describe, expect, it } from 'vitest';

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A batcher that records its batches and answers each item with its double. */
function doubling(options?: ConstructorParameters<typeof TurnBatcher>[1]) {
  const batches: number[][] = [];
  const batcher = new TurnBatcher<number, number>((batch) => {
    batches.push(batch.map((b) => b.item));
    for (const b of batch) b.resolve(b.item * 2);
  }, options);
  return { batcher, batches };
}

describe('TurnBatcher', () => {
  it('flushes the items of one turn together, and those of a later turn apart', async () => {
    const { batcher, batches } = doubling();
    const first = Promise.all([batcher.add(1), batcher.add(2), batcher.add(3)]);
    await nextTurn();
    const second = batcher.add(4);
    expect(await first).toEqual([2, 4, 6]);
    expect(await second).toBe(8);
    expect(batches).toEqual([[1, 2, 3], [4]]);
  });

  it("gathers what I/O callbacks of the same turn add (after: 'io', the default)", async () => {
    const { batcher, batches } = doubling();
    const added: Promise<number>[] = [];
    await new Promise<void>((resolve) => {
      // Two timers due together run in the same timers phase, before the turn's immediates.
      setTimeout(() => added.push(batcher.add(1)), 1);
      setTimeout(() => {
        added.push(batcher.add(2));
        resolve();
      }, 1);
    });
    expect(await Promise.all(added)).toEqual([2, 4]);
    expect(batches).toEqual([[1, 2]]);
  });

  it("after: 'microtasks' flushes once the running code and its microtasks are done", async () => {
    const { batcher, batches } = doubling({ after: 'microtasks' });
    const order: string[] = [];
    setImmediate(() => order.push('immediate'));
    const done = Promise.all([batcher.add(1), batcher.add(2)]).then((values) => {
      order.push('flushed');
      return values;
    });
    expect(await done).toEqual([2, 4]);
    await nextTurn();
    expect(order).toEqual(['flushed', 'immediate']);
    expect(batches).toEqual([[1, 2]]);
  });

  it('answers each item on its own, in any order, also after the flush returned', async () => {
    const batcher = new TurnBatcher<string, string>(async (batch) => {
      const [a, b, c] = batch;
      c!.resolve('c');
      await nextTurn();
      a!.reject(new Error('a failed'));
      b!.resolve('b');
    });
    const results = await Promise.allSettled([batcher.add('a'), batcher.add('b'), batcher.add('c')]);
    expect(results).toEqual([
      { status: 'rejected', reason: new Error('a failed') },
      { status: 'fulfilled', value: 'b' },
      { status: 'fulfilled', value: 'c' },
    ]);
  });

  it("gives a failed flush's error to every item it had not answered", async () => {
    const boom = new Error('store down');
    const batcher = new TurnBatcher<number, number>(async (batch) => {
      batch[0]!.resolve(0);
      await nextTurn();
      throw boom;
    });
    const results = await Promise.allSettled([batcher.add(1), batcher.add(2), batcher.add(3)]);
    expect(results.map((r) => (r.status === 'fulfilled' ? r.value : r.reason))).toEqual([0, boom, boom]);
  });

  it('gives a synchronous throw of flush to every item, and keeps working after it', async () => {
    let fail = true;
    const batcher = new TurnBatcher<number, number>((batch) => {
      if (fail) throw new TypeError('bad batch');
      for (const b of batch) b.resolve(b.item);
    });
    await expect(Promise.all([batcher.add(1), batcher.add(2)])).rejects.toThrow('bad batch');
    fail = false;
    expect(await batcher.add(3)).toBe(3);
  });

  it('rejects an item the flush returned without answering, rather than leave its caller waiting', async () => {
    const batcher = new TurnBatcher<number, number>((batch) => batch[0]!.resolve(1));
    const results = await Promise.allSettled([batcher.add(1), batcher.add(2)]);
    expect(results[0]).toEqual({ status: 'fulfilled', value: 1 });
    expect(results[1]).toMatchObject({
      status: 'rejected',
      reason: { message: 'the batch was flushed without answering this item' },
    });
  });

  it('keeps the first answer of an item answered twice', async () => {
    const batcher = new TurnBatcher<number, string>((batch) => {
      for (const b of batch) {
        b.resolve('first');
        b.resolve('second');
        b.reject(new Error('third'));
      }
    });
    expect(await batcher.add(1)).toBe('first');
  });

  it('splits a turn over maxBatch into batches, in the order the items came', async () => {
    const { batcher, batches } = doubling({ maxBatch: 2 });
    const values = await Promise.all([1, 2, 3, 4, 5].map((n) => batcher.add(n)));
    expect(values).toEqual([2, 4, 6, 8, 10]);
    expect(batches).toEqual([[1, 2], [3, 4], [5]]);
  });

  it('serial: one flush at a time; what comes meanwhile goes in the next batch, split by maxBatch', async () => {
    const batches: number[][] = [];
    let running = 0;
    let most = 0;
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const batcher = new TurnBatcher<number, number>(
      async (batch) => {
        running++;
        most = Math.max(most, running);
        batches.push(batch.map((b) => b.item));
        if (batch[0]!.item === 1) await held;
        else await nextTurn();
        for (const b of batch) b.resolve(b.item);
        running--;
      },
      { serial: true, maxBatch: 3 },
    );
    const first = batcher.add(1);
    await nextTurn();
    expect(batches).toEqual([[1]]);
    // Added over several turns while the first batch is out: they wait for it, then go together.
    const later = [batcher.add(2), batcher.add(3)];
    await nextTurn();
    later.push(batcher.add(4), batcher.add(5));
    await nextTurn();
    expect(batches).toEqual([[1]]);
    release();
    expect(await Promise.all([first, ...later])).toEqual([1, 2, 3, 4, 5]);
    expect(batches).toEqual([[1], [2, 3, 4], [5]]);
    expect(most).toBe(1);
    // Idle again: a new item is flushed in its own turn.
    expect(await batcher.add(6)).toBe(6);
    expect(batches.at(-1)).toEqual([6]);
  });

  it('concurrency: at most that many flushes at once; what comes while all run goes together when one ends', async () => {
    const batches: number[][] = [];
    let running = 0;
    let most = 0;
    const holds = new Map<number, () => void>();
    const batcher = new TurnBatcher<number, number>(
      async (batch) => {
        running++;
        most = Math.max(most, running);
        batches.push(batch.map((b) => b.item));
        const first = batch[0]!.item;
        if (first <= 2) await new Promise<void>((resolve) => holds.set(first, resolve));
        for (const b of batch) b.resolve(b.item);
        running--;
      },
      { concurrency: 2 },
    );
    const calls = [batcher.add(1)];
    await nextTurn();
    // A slot is free: the next turn's item goes at once, in a batch of its own.
    calls.push(batcher.add(2));
    await nextTurn();
    expect(batches).toEqual([[1], [2]]);
    // Both slots taken: items of later turns wait, and leave together once one batch is back.
    calls.push(batcher.add(3));
    await nextTurn();
    calls.push(batcher.add(4), batcher.add(5));
    await nextTurn();
    expect(batches).toEqual([[1], [2]]);
    holds.get(2)!();
    await calls[1];
    await nextTurn();
    expect(batches).toEqual([[1], [2], [3, 4, 5]]);
    holds.get(1)!();
    expect(await Promise.all(calls)).toEqual([1, 2, 3, 4, 5]);
    expect(most).toBe(2);
  });

  it('refuses a concurrency that is not a whole number from 1', () => {
    for (const concurrency of [0, -1, 1.5, Number.NaN]) {
      expect(() => new TurnBatcher<number, number>(() => {}, { concurrency })).toThrow(
        expect.objectContaining({
          code: 'TCC_INVALID_OPTION',
          message: expect.stringContaining(String(concurrency)),
        }),
      );
    }
  });

  it('answers every item exactly once, whatever the turns and failures', async () => {
    for (const options of [
      {},
      { serial: true, maxBatch: 4 },
      { concurrency: 2, maxBatch: 2 },
      { after: 'microtasks' as const, maxBatch: 3 },
    ]) {
      const flushed: number[] = [];
      let batchNo = 0;
      const batcher = new TurnBatcher<number, number>(async (batch: Batched<number, number>[]) => {
        flushed.push(...batch.map((b) => b.item));
        const n = batchNo++;
        if (n % 3 === 1) await nextTurn();
        if (n % 5 === 2) throw new Error(`batch ${n} failed`);
        for (const b of batch) if (b.item % 7 !== 0) b.resolve(b.item);
      }, options);
      const calls: Promise<number>[] = [];
      for (let turn = 0; turn < 20; turn++) {
        for (let i = 0; i < (turn * 7) % 5; i++) {
          const call = batcher.add(calls.length);
          // Looked at once all are in; a failure before then is expected, not unhandled.
          call.catch(() => {});
          calls.push(call);
        }
        await (turn % 2 === 0 ? nextTurn() : Promise.resolve());
      }
      const results = await Promise.allSettled(calls);
      expect(results).toHaveLength(calls.length);
      expect([...flushed].sort((a, b) => a - b)).toEqual(calls.map((_, i) => i));
      results.forEach((r, i) => {
        if (r.status === 'fulfilled') expect(r.value).toBe(i);
      });
    }
  });
});
