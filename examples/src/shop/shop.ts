import { Tcc, type TransactionStorage } from '@tcc/core';
import { CapitalService } from './capital.js';
import { Journal } from './journal.js';
import { Ledger } from './ledger.js';
import { OrderService } from './order.js';
import { RedPacketService } from './red-packet.js';

const SHOP_ACCOUNT = 'shop';
const OPENING_CAPITAL = { alice: 100, bob: 50 };
const OPENING_RED_PACKETS = { alice: 20, bob: 10 };

/** The three services of the shop and the one `Tcc` they share, all in this process. */
export interface Shop {
  readonly tcc: Tcc;
  readonly orders: OrderService;
  readonly capital: CapitalService;
  readonly redPackets: RedPacketService;
  readonly journal: Journal;
}

/** Builds the shop on `storage`, with every participant registered before the first order. */
export function openShop(storage: TransactionStorage): Shop {
  // A demo has no other process that could still be driving a record: recover at once.
  const tcc = new Tcc({ domain: 'shop', storage, recovery: { recoverAfterMs: 0 } });
  const journal = new Journal();
  const capital = tcc.register(
    new CapitalService(new Ledger('capital', OPENING_CAPITAL, SHOP_ACCOUNT), journal),
  );
  const redPackets = tcc.register(
    new RedPacketService(new Ledger('red packet', OPENING_RED_PACKETS, SHOP_ACCOUNT), journal),
  );
  const orders = tcc.register(new OrderService(capital, redPackets, journal));
  return { tcc, orders, capital, redPackets, journal };
}
