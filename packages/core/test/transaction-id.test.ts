import { DuplicateTransactionError, MemoryStorage, Tcc } from '@tcc/core';
import { CountingStorage } from '@tcc/core/testing';
import { describe, expect, it } from 'vitest';
import { Ledger, registerShop } from './support/shop.js';

// tcc.transaction(fn, { id }): a caller's retry of "place order o-1" (a timeout, a double
// click) must not begin the same transaction twice.

function shop(options: { retainMs?: number } = {}) {
  const storage = new CountingStorage(new MemoryStorage());
  const tcc = new Tcc({ domain: 'order', storage, ...options });
  const ledger = new Ledger({ alice: 100 });
  const capital = registerShop(tcc, ledger);
  return { storage, tcc, ledger, capital };
}

describe('tcc.transaction(fn, { id })', () => {
  it('makes the id the globalId, writes the record before the body runs, and keeps it once confirmed', async () => {
    const { storage, tcc, capital } = shop();
    let seen: string | undefined;
    await tcc.transaction(
      async () => {
        seen = tcc.current()?.globalId;
        await capital.debit({ id: 'a', from: 'alice', amount: 10 });
      },
      { id: 'order-1042' },
    );
    expect(seen).toBe('order-1042');
    // One write more than a root without an id (its create comes before the body).
    expect(storage.log).toEqual([
      'create TRYING',
      'update TRYING',
      'update CONFIRMING',
      'complete CONFIRMED',
    ]);
    // Kept a day although retainMs is 0, to answer a retry.
    const kept = await storage.get('order-1042');
    expect(kept).toMatchObject({ status: 'CONFIRMED', keepFor: 24 * 3_600_000 });
    expect(kept!.expiresAt! - kept!.updatedAt).toBe(24 * 3_600_000);
  });

  it('a retry after it confirmed does not run the body, and says it was confirmed', async () => {
    const { storage, tcc, ledger, capital } = shop();
    const body = () => capital.debit({ id: 'a', from: 'alice', amount: 10 });
    await tcc.transaction(body, { id: 'o-1' });
    const writes = storage.writes;
    const error = await tcc.transaction(body, { id: 'o-1' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DuplicateTransactionError);
    expect(error).toMatchObject({
      code: 'TCC_DUPLICATE_TRANSACTION',
      xid: 'o-1',
      status: 'CONFIRMED',
      outcome: 'confirmed',
      message: expect.stringContaining('o-1 already exists (CONFIRMED: confirmed)'),
    });
    expect(ledger.calls).toEqual(['try:a', 'confirm:a']);
    expect(storage.writes).toBe(writes + 1); // the refused create, nothing else
  });

  it('a retry while the first still runs does not run the body, and says it is pending; the first ends as it would have', async () => {
    const { tcc, ledger, capital } = shop();
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const first = tcc.transaction(
      async () => {
        await capital.debit({ id: 'a', from: 'alice', amount: 10 });
        await held;
      },
      { id: 'o-2' },
    );
    let ran = false;
    const second = await tcc
      .transaction(
        async () => {
          ran = true;
        },
        { id: 'o-2' },
      )
      .catch((e: unknown) => e);
    expect(second).toMatchObject({ code: 'TCC_DUPLICATE_TRANSACTION', status: 'TRYING', outcome: 'pending' });
    expect(ran).toBe(false);
    release();
    await first;
    expect(ledger.calls).toEqual(['try:a', 'confirm:a']);
  });

  it('a retry after it was cancelled does not run the body again, and says it was cancelled', async () => {
    const { tcc, ledger, capital } = shop();
    const overdrawn = () => capital.debit({ id: 'big', from: 'alice', amount: 1_000 });
    await expect(tcc.transaction(overdrawn, { id: 'o-3' })).rejects.toThrow();
    await expect(tcc.transaction(overdrawn, { id: 'o-3' })).rejects.toMatchObject({
      code: 'TCC_DUPLICATE_TRANSACTION',
      status: 'CANCELLED',
      outcome: 'cancelled',
    });
    expect(ledger.calls).toEqual(['try:big', 'cancel:big']);
  });

  it('REQUIRES_NEW with an id inside another transaction begins a root of that id', async () => {
    const { tcc, capital } = shop({ retainMs: 60_000 });
    await tcc.transaction(async () => {
      await tcc.transaction(() => capital.debit({ id: 'inner', from: 'alice', amount: 1 }), {
        id: 'inner-root',
        propagation: 'REQUIRES_NEW',
      });
    });
    expect(await tcc.storage.get('inner-root')).toMatchObject({ type: 'ROOT', status: 'CONFIRMED' });
  });

  for (const [label, id, shown] of [
    ['empty', '', '""'],
    ['with a space', 'order 1', '"order 1"'],
    ['with a semicolon', 'a;b', '"a;b"'],
    ['129 characters', 'x'.repeat(129), `"${'x'.repeat(129)}"`],
    ['a number', 42, '42'],
    ['null', null, 'null'],
  ] as const) {
    it(`refuses an id that is ${label}, naming it, before anything is written or run`, async () => {
      const { storage, tcc } = shop();
      let ran = false;
      const error = await tcc
        .transaction(
          () => {
            ran = true;
          },
          { id: id as string },
        )
        .catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'TCC_INVALID_OPTION' });
      expect((error as Error).message).toContain(`tcc.transaction: id must be 1-128 letters`);
      expect((error as Error).message).toContain(`got ${shown}`);
      expect(ran).toBe(false);
      expect(storage.writes).toBe(0);
    });
  }

  it('refuses an id on a call that would join the transaction in scope, or never begins a root', async () => {
    const { storage, tcc } = shop();
    await expect(tcc.transaction(() => {}, { id: 'x', propagation: 'MANDATORY' })).rejects.toThrow(
      'id "x" names a new root, but propagation MANDATORY never begins one',
    );
    await expect(tcc.transaction(() => {}, { id: 'x', propagation: 'SUPPORTS' })).rejects.toMatchObject({
      code: 'TCC_INVALID_OPTION',
    });
    let inner: unknown;
    await tcc.transaction(async () => {
      inner = await tcc.transaction(() => {}, { id: 'joined' }).catch((e: unknown) => e);
    });
    expect(inner).toMatchObject({ code: 'TCC_INVALID_OPTION' });
    expect((inner as Error).message).toMatch(
      /id "joined" names a new root, but this call joins transaction \S+/,
    );
    expect(await storage.get('joined')).toBeUndefined();
  });

  it('a store that fails at the id create: its error, and the body does not run', async () => {
    const storage = new MemoryStorage();
    const tcc = new Tcc({ domain: 'order', storage });
    await storage.close();
    let ran = false;
    await expect(
      tcc.transaction(
        () => {
          ran = true;
        },
        { id: 'o-9' },
      ),
    ).rejects.toMatchObject({ code: 'TCC_STORAGE' });
    expect(ran).toBe(false);
  });
});
