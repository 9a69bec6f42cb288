import { MemoryStorage, Tcc } from '@tcc/core';
import { describe, expect, it } from 'vitest';
import { Ledger, registerShop } from './support/shop.js';

describe('1,000 concurrent roots', () => {
  it('confirm or cancel each one whole, and money is conserved', async () => {
    const accounts: Record<string, number> = {};
    for (let i = 0; i < 50; i++) accounts[`u${i}`] = 100;
    const ledger = new Ledger(accounts);
    const storage = new MemoryStorage();
    const tcc = new Tcc({ domain: 'order', storage });
    const capital = registerShop(tcc, ledger);
    const initial = ledger.total();

    // Each transfer debits two accounts; some exceed a balance and must cancel both legs.
    const outcomes = await Promise.allSettled(
      Array.from({ length: 1_000 }, (_, i) =>
        tcc.transaction(async () => {
          await capital.debit({ id: `${i}-a`, from: `u${i % 50}`, amount: 7 });
          await new Promise<void>((resolve) => setImmediate(resolve));
          await capital.debit({ id: `${i}-b`, from: `u${(i * 7 + 3) % 50}`, amount: 5 });
        }),
      ),
    );
    const confirmed = outcomes.filter((o) => o.status === 'fulfilled').length;
    const cancelled = outcomes.length - confirmed;
    expect(confirmed).toBeGreaterThan(0);
    expect(cancelled).toBeGreaterThan(0);

    expect(ledger.total()).toBe(initial);
    expect(ledger.frozen.size).toBe(0);
    expect(ledger.balances.get('sink')).toBe(confirmed * 12);
    for (let i = 0; i < 50; i++) expect(ledger.balances.get(`u${i}`)).toBeGreaterThanOrEqual(0);
    expect(await storage.count({})).toBe(0);
    // Every confirmed transfer confirmed both legs exactly once.
    const confirms = ledger.calls.filter((c) => c.startsWith('confirm:'));
    expect(new Set(confirms).size).toBe(confirms.length);
    expect(confirms).toHaveLength(confirmed * 2);
  });
});
