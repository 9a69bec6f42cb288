/** Money one order takes from one user: the argument of every try, confirm and cancel. */
export interface Payment {
  orderId: string;
  userId: string;
  amount: number;
}

/** A try asked for more than the account holds; nothing was frozen. */
export class InsufficientFundsError extends Error {
  override readonly name = 'InsufficientFundsError';
}

/**
 * Accounts of one kind of money (cash or red packets) with funds frozen per order: a try
 * freezes, a confirm spends into the shop's account, a cancel gives back. Frozen funds are
 * keyed by order id, so a second confirm or cancel of the same order finds nothing and does
 * nothing, and a cancel whose try never froze anything (empty rollback) does nothing too.
 */
export class Ledger {
  readonly #balances = new Map<string, number>();
  readonly #frozen = new Map<string, Payment>();
  /** Sum of all accounts when the ledger opened: what balances plus frozen funds must stay. */
  readonly openingTotal: number;

  constructor(
    readonly currency: string,
    accounts: Readonly<Record<string, number>>,
    readonly shopAccount: string,
  ) {
    for (const [account, amount] of Object.entries(accounts)) this.#balances.set(account, amount);
    this.#balances.set(shopAccount, this.#balances.get(shopAccount) ?? 0);
    this.openingTotal = this.total();
  }

  balance(account: string): number {
    return this.#balances.get(account) ?? 0;
  }

  /** Every account and its balance, the shop's included. */
  accounts(): [account: string, balance: number][] {
    return [...this.#balances];
  }

  /** What the order has frozen and not yet spent or released. */
  frozen(orderId: string): number {
    return this.#frozen.get(orderId)?.amount ?? 0;
  }

  frozenTotal(): number {
    let sum = 0;
    for (const payment of this.#frozen.values()) sum += payment.amount;
    return sum;
  }

  /** Every balance, the shop's included, plus what is frozen. */
  total(): number {
    let sum = this.frozenTotal();
    for (const amount of this.#balances.values()) sum += amount;
    return sum;
  }

  freeze(payment: Payment): void {
    // A second freeze under the same order would overwrite the first and lose its money.
    if (this.#frozen.has(payment.orderId)) {
      throw new Error(`${this.currency}: order ${payment.orderId} already has frozen funds`);
    }
    const balance = this.balance(payment.userId);
    if (balance < payment.amount) {
      throw new InsufficientFundsError(
        `${this.currency}: ${payment.userId} has ${balance}, order ${payment.orderId} needs ${payment.amount}`,
      );
    }
    this.#balances.set(payment.userId, balance - payment.amount);
    this.#frozen.set(payment.orderId, { ...payment });
  }

  /** Moves the order's frozen funds to the shop. */
  spend(orderId: string): void {
    const payment = this.#frozen.get(orderId);
    if (payment === undefined) return;
    this.#frozen.delete(orderId);
    this.#balances.set(this.shopAccount, this.balance(this.shopAccount) + payment.amount);
  }

  /** Gives the order's frozen funds back to the user. */
  release(orderId: string): void {
    const payment = this.#frozen.get(orderId);
    if (payment === undefined) return;
    this.#frozen.delete(orderId);
    this.#balances.set(payment.userId, this.balance(payment.userId) + payment.amount);
  }
}
