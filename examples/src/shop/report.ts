import { TccError, type TransactionRecord } from '@tcc/core';
import type { Shop } from './shop.js';

/** What a user holds of each kind of money, to print an order as "before -> after". */
export interface Holdings {
  readonly capital: number;
  readonly redPacket: number;
}

export function holdingsOf(shop: Shop, userId: string): Holdings {
  return { capital: shop.capital.ledger.balance(userId), redPacket: shop.redPackets.ledger.balance(userId) };
}

/** e.g. `order o-1: CONFIRMED  capital alice 100 -> 70  red packet alice 20 -> 10` */
export function describeOrder(shop: Shop, orderId: string, before: Holdings): string {
  const order = shop.orders.order(orderId);
  if (order === undefined) return `order ${orderId}: not found`;
  const now = holdingsOf(shop, order.userId);
  const frozen: [kind: string, amount: number][] = [
    ['capital', shop.capital.ledger.frozen(orderId)],
    ['red packet', shop.redPackets.ledger.frozen(orderId)],
  ];
  const stillFrozen = frozen.filter(([, amount]) => amount !== 0);
  return (
    `order ${orderId}: ${order.status}` +
    `  capital ${order.userId} ${before.capital} -> ${now.capital}` +
    `  red packet ${order.userId} ${before.redPacket} -> ${now.redPacket}` +
    (stillFrozen.length > 0
      ? `  (still frozen: ${stillFrozen.map(([kind, amount]) => `${kind} ${amount}`).join(', ')})`
      : '')
  );
}

/** One line per record, as an operator would want to see a stuck one. */
export function describeRecord(record: TransactionRecord): string {
  const participants = record.participants
    .map((p) => `${p.id} ${p.kind === 'local' ? p.target : p.endpoint} ${p.status}`)
    .join(', ');
  return (
    `${record.type} ${record.xid} ${record.status} [${participants}]` +
    (record.lastError === undefined ? '' : `  lastError: ${record.lastError}`)
  );
}

/** SDK errors by their stable code, others by class name. */
export function describeError(error: unknown): string {
  if (error instanceof TccError) return `${error.code}: ${error.message}`;
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}
