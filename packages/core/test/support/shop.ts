import { Compensable, Participant, type Tcc } from '@tcc/core';

/** A tiny bank with frozen funds: the business data that TCC tests assert invariants on. */
export class Ledger {
  readonly balances = new Map<string, number>();
  readonly frozen = new Map<string, number>();
  readonly calls: string[] = [];

  constructor(accounts: Record<string, number>) {
    for (const [id, amount] of Object.entries(accounts)) this.balances.set(id, amount);
  }

  total(): number {
    let sum = 0;
    for (const v of this.balances.values()) sum += v;
    for (const v of this.frozen.values()) sum += v;
    return sum;
  }
}

export interface Transfer {
  id: string;
  from: string;
  amount: number;
}

export class InsufficientFunds extends Error {}

@Participant('capital')
export class CapitalService {
  failConfirm = 0;
  failCancel = 0;

  constructor(readonly ledger: Ledger) {}

  @Compensable({ confirmMethod: 'confirmDebit', cancelMethod: 'cancelDebit' })
  async debit(t: Transfer): Promise<void> {
    this.ledger.calls.push(`try:${t.id}`);
    const balance = this.ledger.balances.get(t.from) ?? 0;
    if (balance < t.amount) throw new InsufficientFunds(`${t.from} has ${balance}, needs ${t.amount}`);
    this.ledger.balances.set(t.from, balance - t.amount);
    this.ledger.frozen.set(t.id, t.amount);
  }

  async confirmDebit(t: Transfer): Promise<void> {
    if (this.failConfirm > 0) {
      this.failConfirm--;
      throw new Error(`confirm of ${t.id} failed on purpose`);
    }
    this.ledger.calls.push(`confirm:${t.id}`);
    // Idempotent: a second confirm finds nothing frozen.
    if (this.ledger.frozen.delete(t.id)) {
      this.ledger.balances.set('sink', (this.ledger.balances.get('sink') ?? 0) + t.amount);
    }
  }

  async cancelDebit(t: Transfer): Promise<void> {
    if (this.failCancel > 0) {
      this.failCancel--;
      throw new Error(`cancel of ${t.id} failed on purpose`);
    }
    this.ledger.calls.push(`cancel:${t.id}`);
    const frozen = this.ledger.frozen.get(t.id);
    // Empty rollback: a try that never froze anything leaves nothing to release.
    if (frozen !== undefined) {
      this.ledger.frozen.delete(t.id);
      this.ledger.balances.set(t.from, (this.ledger.balances.get(t.from) ?? 0) + frozen);
    }
  }
}

export function registerShop(tcc: Tcc, ledger: Ledger): CapitalService {
  return tcc.register(new CapitalService(ledger));
}
