import { ConfirmFailedError, MemoryStorage, Tcc } from '@tcc/core';
import { CountingStorage } from '@tcc/core/testing';
import { describe, expect, it } from 'vitest';
import { InsufficientFunds, Ledger, registerShop } from './support/shop.js';

function setup(accounts: Record<string, number> = { alice: 100, bob: 50 }, recoverAfterMs = 30_000) {
  const storage = new CountingStorage(new MemoryStorage());
  const tcc = new Tcc({ domain: 'order', storage, recovery: { recoverAfterMs } });
  const ledger = new Ledger(accounts);
  const capital = registerShop(tcc, ledger);
  return { storage, tcc, ledger, capital };
}

async function stored(storage: CountingStorage) {
  return (await storage.list({})).records;
}

describe('a root transaction', () => {
  it('confirms every participant when the body returns, and leaves nothing behind', async () => {
    const { tcc, ledger, capital, storage } = setup();
    await tcc.transaction(async () => {
      await capital.debit({ id: 't1', from: 'alice', amount: 30 });
      await capital.debit({ id: 't2', from: 'bob', amount: 20 });
    });
    expect(ledger.calls).toEqual(['try:t1', 'try:t2', 'confirm:t1', 'confirm:t2']);
    expect(ledger.balances.get('sink')).toBe(50);
    expect(ledger.frozen.size).toBe(0);
    expect(await stored(storage)).toEqual([]);
  });

  it('cancels every enlisted participant in reverse order when the body throws, and rethrows', async () => {
    const { tcc, ledger, capital, storage } = setup();
    const failure = tcc.transaction(async () => {
      await capital.debit({ id: 't1', from: 'alice', amount: 30 });
      await capital.debit({ id: 't2', from: 'bob', amount: 80 });
    });
    await expect(failure).rejects.toBeInstanceOf(InsufficientFunds);
    expect(ledger.calls).toEqual(['try:t1', 'try:t2', 'cancel:t2', 'cancel:t1']);
    expect(ledger.balances.get('alice')).toBe(100);
    expect(ledger.balances.get('bob')).toBe(50);
    expect(ledger.total()).toBe(150);
    expect(await stored(storage)).toEqual([]);
  });

  it('costs k + 2 writes for k participants on the happy path', async () => {
    for (const k of [1, 2, 3, 5]) {
      const { tcc, capital, storage } = setup({ alice: 1000 });
      await tcc.transaction(async () => {
        for (let i = 0; i < k; i++) await capital.debit({ id: `t${i}`, from: 'alice', amount: 1 });
      });
      expect(storage.writes, storage.log.join(', ')).toBe(k + 2);
      expect(storage.log[0]).toBe('create TRYING');
      expect(storage.log.at(-2)).toBe('update CONFIRMING');
      expect(storage.log.at(-1)).toBe('remove');
    }
  });

  it('writes nothing for a transaction that enlists nobody', async () => {
    const { tcc, storage } = setup();
    expect(await tcc.transaction(async () => 42)).toBe(42);
    expect(storage.writes).toBe(0);
  });

  it('persists each participant before its try runs', async () => {
    const { tcc, storage } = setup();
    const seen: number[] = [];
    const step = tcc.compensable('probe', {
      try: async () => {
        const [record] = await stored(storage);
        seen.push(record?.participants.length ?? 0);
      },
      confirm: async () => {},
      cancel: async () => {},
    });
    await tcc.transaction(async () => {
      await step();
      await step();
    });
    expect(seen).toEqual([1, 2]);
  });

  it('cancels when a try failed even if the body caught its error', async () => {
    const { tcc, ledger, capital } = setup();
    const failure = tcc.transaction(async () => {
      await capital.debit({ id: 't1', from: 'alice', amount: 30 });
      await capital.debit({ id: 't2', from: 'bob', amount: 80 }).catch(() => {});
      return 'looks fine';
    });
    await expect(failure).rejects.toBeInstanceOf(InsufficientFunds);
    expect(ledger.total()).toBe(150);
    expect(ledger.balances.get('alice')).toBe(100);
  });

  it('serialises the writes of participants called concurrently', async () => {
    const { tcc, ledger, capital, storage } = setup({ alice: 100 });
    await tcc.transaction(async () => {
      await Promise.all(
        Array.from({ length: 10 }, (_, i) => capital.debit({ id: `t${i}`, from: 'alice', amount: 1 })),
      );
    });
    expect(ledger.balances.get('sink')).toBe(10);
    expect(await stored(storage)).toEqual([]);
  });

  it('refuses a participant that joins after the body returned', async () => {
    const { tcc, capital } = setup();
    let late: Promise<void> | undefined;
    await tcc.transaction(async () => {
      late = new Promise<void>((resolve) => setTimeout(resolve, 5)).then(() =>
        capital.debit({ id: 'late', from: 'alice', amount: 1 }),
      );
    });
    await expect(late).rejects.toMatchObject({ code: 'TCC_INVALID_STATE' });
  });
});

describe('a confirm that fails part-way', () => {
  it('keeps the record CONFIRMING with finished participants marked, and recovery confirms only the rest', async () => {
    const { tcc, ledger, capital, storage } = setup({ alice: 100 }, 0);
    const second = tcc.compensable('second', {
      try: async (id: string) => {
        ledger.calls.push(`try:${id}`);
      },
      confirm: async (id: string) => {
        if (!ledger.calls.includes('failed-once')) {
          ledger.calls.push('failed-once');
          throw new Error('warehouse down');
        }
        ledger.calls.push(`confirm:${id}`);
      },
      cancel: async (id: string) => {
        ledger.calls.push(`cancel:${id}`);
      },
    });
    const failure = tcc.transaction(async () => {
      await capital.debit({ id: 'a', from: 'alice', amount: 10 });
      await second('b');
      await capital.debit({ id: 'c', from: 'alice', amount: 10 });
    });
    const error = await failure.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfirmFailedError);
    expect((error as ConfirmFailedError).code).toBe('TCC_CONFIRM_FAILED');
    expect(((error as ConfirmFailedError).cause as Error).message).toBe('warehouse down');

    const [record] = await stored(storage);
    expect(record?.status).toBe('CONFIRMING');
    expect(record?.participants.map((p) => p.status)).toEqual(['CONFIRMED', 'TRYING', 'TRYING']);
    expect(record?.lastError).toContain('warehouse down');

    const result = await tcc.recover(record!.xid);
    expect(result.outcome).toBe('confirmed');
    expect(ledger.calls.filter((c) => c.startsWith('confirm:'))).toEqual([
      'confirm:a',
      'confirm:b',
      'confirm:c',
    ]);
    expect(ledger.balances.get('sink')).toBe(20);
    expect(await stored(storage)).toEqual([]);
  });
});
