import { MemoryStorage, Tcc, type TransactionStorage } from '@tcc/core';
import { accountOf, Books, Funds, FundsService, Stock, StockService, skuOf } from './fixtures.js';

export type Mode = 'tcc' | 'plain';

/** One ready-to-run business operation and what it works on. */
export interface Scenario {
  readonly mode: Mode;
  readonly books: Books;
  /** One transaction (tcc) or the same two business calls without tcc (plain). */
  readonly op: () => Promise<unknown>;
  /** Records held by the store (0 when every transaction finished), `undefined` for plain. */
  readonly storedRecords: () => number | undefined;
  close(): Promise<void>;
}

/**
 * A root transaction with two local participants (on MemoryStorage unless `storage` is given):
 * freeze funds, then reserve stock; the SDK then confirms both. Writes per transaction: create,
 * update (2nd participant), update CONFIRMING, remove. The caller closes a `storage` it passed.
 */
export function tccScenario(storage?: TransactionStorage): Scenario {
  const books = new Books(64);
  const memory = storage === undefined ? new MemoryStorage() : undefined;
  const tcc = new Tcc({ domain: 'bench', storage: storage ?? memory! });
  const funds = tcc.register(new FundsService(books));
  const stock = tcc.register(new StockService(books));
  let seq = 0;
  const op = (): Promise<unknown> => {
    const n = ++seq;
    const id = `tx-${n}`;
    return tcc.transaction(async () => {
      await funds.freeze({ id, account: accountOf(n), amount: 1 });
      await stock.reserve({ id, sku: skuOf(n), quantity: 1 });
    });
  };
  return {
    mode: 'tcc',
    books,
    op,
    storedRecords: () => memory?.stats().records,
    close: async () => {
      await tcc.stop();
      await memory?.close();
    },
  };
}

/** The same business calls, try then confirm, as plain awaited method calls. */
export function plainScenario(): Scenario {
  const books = new Books(64);
  const funds = new Funds(books);
  const stock = new Stock(books);
  let seq = 0;
  const op = async (): Promise<void> => {
    const n = ++seq;
    const id = `tx-${n}`;
    const hold = { id, account: accountOf(n), amount: 1 };
    const reservation = { id, sku: skuOf(n), quantity: 1 };
    await funds.freeze(hold);
    await stock.reserve(reservation);
    await funds.confirmFreeze(hold);
    await stock.confirmReserve(reservation);
  };
  return { mode: 'plain', books, op, storedRecords: () => undefined, close: async () => {} };
}

export function scenario(mode: Mode): Scenario {
  return mode === 'tcc' ? tccScenario() : plainScenario();
}
