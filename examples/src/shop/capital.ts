import { Compensable, Participant } from '@tcc/core';
import type { Journal } from './journal.js';
import type { Ledger, Payment } from './ledger.js';

/**
 * The users' cash accounts. The try freezes the order's amount, confirm pays it to the shop,
 * cancel releases it; the ledger makes repeated confirms/cancels and empty rollbacks harmless.
 */
@Participant('capital')
export class CapitalService {
  constructor(
    readonly ledger: Ledger,
    private readonly journal: Journal,
  ) {}

  @Compensable({ confirmMethod: 'confirmFreeze', cancelMethod: 'cancelFreeze' })
  async freeze(payment: Payment): Promise<void> {
    await this.journal.step('capital.try', () => this.ledger.freeze(payment));
  }

  async confirmFreeze(payment: Payment): Promise<void> {
    await this.journal.step('capital.confirm', () => this.ledger.spend(payment.orderId));
  }

  async cancelFreeze(payment: Payment): Promise<void> {
    await this.journal.step('capital.cancel', () => this.ledger.release(payment.orderId));
  }
}
