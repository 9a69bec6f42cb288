import { MemoryStorage, Tcc, type TransactionStorage } from '@tcc/core';
import {
  accountOf,
  Books,
  Funds,
  FundsService,
  type Hold,
  type Reservation,
  SOLD_OUT,
  Stock,
  StockService,
  skuOf,
} from './fixtures.js';
import { Tally } from './tally.js';
import { ALL_CONFIRM, amountOf, cancels, KEYS, quantityOf, type Workload } from './workload.js';

export type Mode = 'tcc' | 'plain';

/** One ready-to-run business operation and what it works on. */
export interface Scenario {
  readonly mode: Mode;
  readonly books: Books;
  /** How each transaction ended, as the caller saw it. */
  readonly tally: Tally;
  /** One transaction (tcc) or the same business calls (plain); resolves on a cancel the workload asked for. */
  readonly op: () => Promise<unknown>;
  /** Transactions begun so far. */
  readonly started: () => number;
  /** Records held by the store (0 when every transaction finished), `undefined` for plain. */
  readonly storedRecords: () => number | undefined;
  close(): Promise<void>;
}

/** The n-th transaction's hold and reservation; a cancelled one asks for a sold-out sku. */
function orderOf(work: Workload, n: number): { hold: Hold; reservation: Reservation } {
  const id = `tx-${n}`;
  return {
    hold: { id, account: accountOf(n), amount: amountOf(n) },
    reservation: { id, sku: cancels(work, n) ? SOLD_OUT : skuOf(n), quantity: quantityOf(n) },
  };
}

/**
 * A root transaction with two local participants (on MemoryStorage unless `storage` is given):
 * freeze funds, then reserve stock; the SDK then confirms both, or, when the reservation is
 * out of stock, cancels both (the funds given back, the reservation an empty rollback). Writes
 * per transaction either way: create, update (2nd participant), update CONFIRMING or
 * CANCELLING, remove. The caller closes a `storage` it passed.
 */
export function tccScenario(storage?: TransactionStorage, work: Workload = ALL_CONFIRM): Scenario {
  const books = new Books(KEYS);
  const tally = new Tally(work);
  const memory = storage === undefined ? new MemoryStorage() : undefined;
  const tcc = new Tcc({ domain: 'bench', storage: storage ?? memory! });
  const funds = tcc.register(new FundsService(books));
  const stock = tcc.register(new StockService(books));
  let seq = 0;
  const op = async (): Promise<void> => {
    const n = ++seq;
    const { hold, reservation } = orderOf(work, n);
    try {
      await tcc.transaction(async () => {
        await funds.freeze(hold);
        await stock.reserve(reservation);
      });
    } catch (error) {
      if (tally.cancel(n, error)) return;
      throw error;
    }
    tally.confirm(n);
  };
  return {
    mode: 'tcc',
    books,
    tally,
    op,
    started: () => seq,
    storedRecords: () => memory?.stats().records,
    close: async () => {
      await tcc.stop();
      await memory?.close();
    },
  };
}

/**
 * The same business calls as plain awaited method calls: try, try, then confirm both; when the
 * reservation fails, cancel both by hand, in the order the SDK does (reverse of the tries).
 */
export function plainScenario(work: Workload = ALL_CONFIRM): Scenario {
  const books = new Books(KEYS);
  const tally = new Tally(work);
  const funds = new Funds(books);
  const stock = new Stock(books);
  let seq = 0;
  const op = async (): Promise<void> => {
    const n = ++seq;
    const { hold, reservation } = orderOf(work, n);
    await funds.freeze(hold);
    try {
      await stock.reserve(reservation);
    } catch (error) {
      await stock.cancelReserve(reservation);
      await funds.cancelFreeze(hold);
      if (tally.cancel(n, error)) return;
      throw error;
    }
    await funds.confirmFreeze(hold);
    await stock.confirmReserve(reservation);
    tally.confirm(n);
  };
  return {
    mode: 'plain',
    books,
    tally,
    op,
    started: () => seq,
    storedRecords: () => undefined,
    close: async () => {},
  };
}

export function scenario(mode: Mode, work: Workload = ALL_CONFIRM): Scenario {
  return mode === 'tcc' ? tccScenario(undefined, work) : plainScenario(work);
}
