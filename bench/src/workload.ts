/**
 * What the n-th transaction of a scenario does (n counts from 1): which account and sku it
 * touches, how much, and whether its second try fails. Everything follows from n alone, so both
 * modes do the same business work and the audit can recompute, from the number of transactions
 * run, exactly what the books must say afterwards.
 */
export interface Workload {
  /** Every `cancelEvery`-th transaction is cancelled (0: none is). */
  readonly cancelEvery: number;
}

/** The storage bench's load: every transaction confirms, so its writes per transaction stay 4. */
export const ALL_CONFIRM: Workload = { cancelEvery: 0 };

/** The core bench's load: one in five is cancelled. */
export const CANCEL_ONE_IN_FIVE: Workload = { cancelEvery: 5 };

export const KEYS = 64;

export const cancels = (work: Workload, n: number): boolean =>
  work.cancelEvery > 0 && n % work.cancelEvery === 0;

/** Key index of the account and sku (both `n mod 64`: every key sees cancels too, 64 and 5 are coprime). */
export const keyOf = (n: number): number => n & (KEYS - 1);

// Amounts vary with n so that a confirm applied to the wrong transaction shows in the totals.
export const amountOf = (n: number): number => 1 + (n % 7);
export const quantityOf = (n: number): number => 1 + (n % 3);

/** What the first `transactions` transactions must leave in the books, key by key. */
export interface Expected {
  readonly confirmed: number;
  readonly cancelled: number;
  readonly spent: number;
  readonly shipped: number;
  readonly spentByAccount: readonly number[];
  readonly shippedBySku: readonly number[];
}

export function expectedAfter(work: Workload, transactions: number): Expected {
  const spentByAccount = new Array<number>(KEYS).fill(0);
  const shippedBySku = new Array<number>(KEYS).fill(0);
  let confirmed = 0;
  let spent = 0;
  let shipped = 0;
  for (let n = 1; n <= transactions; n++) {
    if (cancels(work, n)) continue;
    confirmed++;
    spent += amountOf(n);
    shipped += quantityOf(n);
    spentByAccount[keyOf(n)]! += amountOf(n);
    shippedBySku[keyOf(n)]! += quantityOf(n);
  }
  return {
    confirmed,
    cancelled: transactions - confirmed,
    spent,
    shipped,
    spentByAccount,
    shippedBySku,
  };
}
