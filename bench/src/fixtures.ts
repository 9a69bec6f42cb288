import { Compensable, Participant } from '@tcc/core';

/**
 * The business side of the benchmark: two small in-memory services. Each try changes a Map
 * (freeze funds, reserve stock), confirm and cancel finish or undo it, so the work per
 * transaction is real but tiny and memory stays flat. The undecorated base classes are what the
 * `plain` rows call; the `@Compensable` subclasses are what the `tcc` rows register.
 */

export interface Hold {
  id: string;
  account: string;
  amount: number;
}

export interface Reservation {
  id: string;
  sku: string;
  quantity: number;
}

export class Books {
  readonly balances = new Map<string, number>();
  readonly frozen = new Map<string, number>();
  readonly stock = new Map<string, number>();
  readonly reserved = new Map<string, number>();
  spent = 0;
  shipped = 0;
  readonly initialFunds: number;
  readonly initialStock: number;
  /** What each account and each sku (but the sold-out one) holds at the start. */
  readonly opening = 1e12;

  constructor(keys: number) {
    const plenty = this.opening;
    for (let i = 0; i < keys; i++) {
      this.balances.set(accountOf(i), plenty);
      this.stock.set(skuOf(i), plenty);
    }
    this.stock.set(SOLD_OUT, 0);
    this.initialFunds = plenty * keys;
    this.initialStock = plenty * keys;
  }

  /** Throws unless every transaction finished and nothing was created or lost. */
  check(label: string): void {
    let funds = this.spent;
    for (const v of this.balances.values()) funds += v;
    for (const v of this.frozen.values()) funds += v;
    let stock = this.shipped;
    for (const v of this.stock.values()) stock += v;
    for (const v of this.reserved.values()) stock += v;
    const problems: string[] = [];
    if (this.frozen.size !== 0) problems.push(`${this.frozen.size} holds still frozen`);
    if (this.reserved.size !== 0) problems.push(`${this.reserved.size} reservations still open`);
    if (funds !== this.initialFunds) problems.push(`funds ${funds} != ${this.initialFunds}`);
    if (stock !== this.initialStock) problems.push(`stock ${stock} != ${this.initialStock}`);
    if (problems.length > 0) throw new Error(`${label}: business invariants broken: ${problems.join('; ')}`);
  }
}

const ACCOUNTS = Array.from({ length: 64 }, (_, i) => `acct-${i}`);
const SKUS = Array.from({ length: 64 }, (_, i) => `sku-${i}`);
export const accountOf = (i: number): string => ACCOUNTS[i & 63]!;
export const skuOf = (i: number): string => SKUS[i & 63]!;
/** A sku with no stock: the reservation a cancelled transaction asks for. */
export const SOLD_OUT = 'sku-sold-out';

/** The business failure of a try; a scenario cancels on it and on nothing else. */
export class OutOfStockError extends Error {
  override readonly name = 'OutOfStockError';
}

export class Funds {
  constructor(readonly books: Books) {}

  async freeze(hold: Hold): Promise<unknown> {
    const balance = this.books.balances.get(hold.account) ?? 0;
    if (balance < hold.amount) throw new Error(`${hold.account}: insufficient funds`);
    this.books.balances.set(hold.account, balance - hold.amount);
    this.books.frozen.set(hold.id, hold.amount);
    return balance - hold.amount;
  }

  async confirmFreeze(hold: Hold): Promise<void> {
    const frozen = this.books.frozen.get(hold.id);
    if (frozen === undefined) return; // idempotent
    this.books.frozen.delete(hold.id);
    this.books.spent += frozen;
  }

  async cancelFreeze(hold: Hold): Promise<void> {
    const frozen = this.books.frozen.get(hold.id);
    if (frozen === undefined) return; // empty rollback
    this.books.frozen.delete(hold.id);
    this.books.balances.set(hold.account, (this.books.balances.get(hold.account) ?? 0) + frozen);
  }
}

export class Stock {
  constructor(readonly books: Books) {}

  async reserve(r: Reservation): Promise<unknown> {
    const available = this.books.stock.get(r.sku) ?? 0;
    if (available < r.quantity) throw new OutOfStockError(`${r.sku}: out of stock`);
    this.books.stock.set(r.sku, available - r.quantity);
    this.books.reserved.set(r.id, r.quantity);
    return available - r.quantity;
  }

  async confirmReserve(r: Reservation): Promise<void> {
    const quantity = this.books.reserved.get(r.id);
    if (quantity === undefined) return;
    this.books.reserved.delete(r.id);
    this.books.shipped += quantity;
  }

  async cancelReserve(r: Reservation): Promise<void> {
    const quantity = this.books.reserved.get(r.id);
    if (quantity === undefined) return;
    this.books.reserved.delete(r.id);
    this.books.stock.set(r.sku, (this.books.stock.get(r.sku) ?? 0) + quantity);
  }
}

// The overrides are not `async`: they hand back the base method's promise unchanged, so the tcc
// rows run exactly the business code of the plain rows plus the SDK.
// Tries return what is left, typed as the base classes type it (`Promise<unknown>`).

@Participant('funds')
export class FundsService extends Funds {
  @Compensable({ confirmMethod: 'confirmFreeze', cancelMethod: 'cancelFreeze' })
  override freeze(hold: Hold): Promise<unknown> {
    return super.freeze(hold);
  }
}

@Participant('stock')
export class StockService extends Stock {
  @Compensable({ confirmMethod: 'confirmReserve', cancelMethod: 'cancelReserve' })
  override reserve(r: Reservation): Promise<unknown> {
    return super.reserve(r);
  }
}
