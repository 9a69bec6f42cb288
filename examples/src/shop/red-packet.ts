import { Compensable, Participant } from '@tcc/core';
import type { Journal } from './journal.js';
import type { Ledger, Payment } from './ledger.js';

/**
 * The users' red packets (vouchers), spent alongside cash: the try sets the order's vouchers
 * aside, confirm gives them to the shop, cancel gives them back.
 */
@Participant('red-packet')
export class RedPacketService {
  /**
   * When set, the next confirm throws (and clears the flag), as an outage of the voucher
   * store would: the demo uses it to leave a committed transaction for recovery to finish.
   */
  failNextConfirm = false;

  constructor(
    readonly ledger: Ledger,
    private readonly journal: Journal,
  ) {}

  @Compensable({ confirmMethod: 'confirmUse', cancelMethod: 'cancelUse' })
  async use(payment: Payment): Promise<void> {
    await this.journal.step('red-packet.try', () => this.ledger.freeze(payment));
  }

  async confirmUse(payment: Payment): Promise<void> {
    await this.journal.step('red-packet.confirm', () => {
      if (this.failNextConfirm) {
        this.failNextConfirm = false;
        throw new Error('red packet store unavailable');
      }
      this.ledger.spend(payment.orderId);
    });
  }

  async cancelUse(payment: Payment): Promise<void> {
    await this.journal.step('red-packet.cancel', () => this.ledger.release(payment.orderId));
  }
}
