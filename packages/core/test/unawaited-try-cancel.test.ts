import { MemoryStorage, Tcc } from '@tcc/core';
import { describe, expect, it } from 'vitest';

describe('a body that throws while a try it did not await is still running', () => {
  it('cancels only once that try has ended, so what the try froze is released', async () => {
    const storage = new MemoryStorage();
    const tcc = new Tcc({ domain: 'order', storage });
    const calls: string[] = [];
    const frozen = new Map<string, number>();
    let started!: () => void;
    const tryStarted = new Promise<void>((resolve) => (started = resolve));
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const freeze = tcc.compensable('wallet.freeze', {
      try: async (orderId: string, amount: number) => {
        calls.push('try-start');
        started();
        await released;
        frozen.set(orderId, amount);
        calls.push('try-end');
      },
      confirm: async (orderId: string) => {
        calls.push('confirm');
        frozen.delete(orderId);
      },
      cancel: async (orderId: string) => {
        calls.push('cancel');
        frozen.delete(orderId);
      },
    });

    let floating: Promise<void> | undefined;
    const outcome = tcc.transaction(async () => {
      floating = freeze('o-1', 30);
      await tryStarted;
      // The try may go on only in a later turn of the event loop. The store is in memory (no
      // I/O), so a cancel that did not wait for the try would have run before that turn.
      setImmediate(release);
      throw new Error('the order changed its mind');
    });

    await expect(outcome).rejects.toThrow('the order changed its mind');
    await floating;
    expect(calls).toEqual(['try-start', 'try-end', 'cancel']);
    expect([...frozen]).toEqual([]);
    expect(await storage.count({})).toBe(0);
  });
});
