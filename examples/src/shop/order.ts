import { Compensable, Participant } from '@tcc/core';
import type { CapitalService } from './capital.js';
import type { Journal } from './journal.js';
import type { RedPacketService } from './red-packet.js';

export interface PlaceOrder {
  orderId: string;
  userId: string;
  capitalAmount: number;
  redPacketAmount: number;
}

export type OrderStatus = 'PAYING' | 'CONFIRMED' | 'CANCELLED';

export interface Order extends PlaceOrder {
  status: OrderStatus;
}

/**
 * Takes orders and pays for them with cash and red packets in one TCC transaction.
 * `placeOrder` is a decorated root: called outside a transaction it begins one, enlists the
 * order itself as the first participant, and the capital and red-packet tries it calls join.
 * The order's own confirm and cancel record how the payment ended.
 */
@Participant('order')
export class OrderService {
  readonly #orders = new Map<string, Order>();

  constructor(
    private readonly capital: CapitalService,
    private readonly redPackets: RedPacketService,
    private readonly journal: Journal,
  ) {}

  @Compensable({ confirmMethod: 'confirmOrder', cancelMethod: 'cancelOrder' })
  async placeOrder(request: PlaceOrder): Promise<void> {
    await this.journal.step('order.try', () => {
      this.#orders.set(request.orderId, { ...request, status: 'PAYING' });
    });
    const { orderId, userId } = request;
    // Vouchers before cash: a cash failure then shows both tries being undone.
    await this.redPackets.use({ orderId, userId, amount: request.redPacketAmount });
    await this.capital.freeze({ orderId, userId, amount: request.capitalAmount });
  }

  async confirmOrder(request: PlaceOrder): Promise<void> {
    await this.journal.step('order.confirm', () => this.#settle(request.orderId, 'CONFIRMED'));
  }

  async cancelOrder(request: PlaceOrder): Promise<void> {
    await this.journal.step('order.cancel', () => this.#settle(request.orderId, 'CANCELLED'));
  }

  order(orderId: string): Order | undefined {
    const order = this.#orders.get(orderId);
    return order === undefined ? undefined : { ...order };
  }

  #settle(orderId: string, status: OrderStatus): void {
    const order = this.#orders.get(orderId);
    // Absent only if the try never ran (empty rollback): there is nothing to mark.
    if (order !== undefined) order.status = status;
  }
}
