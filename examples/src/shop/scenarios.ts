import { ConfirmFailedError, type RecoveryResult } from '@tcc/core';
import { InsufficientFundsError } from './ledger.js';
import type { OrderStatus, PlaceOrder } from './order.js';
import { describeError, describeOrder, describeRecord, type Holdings, holdingsOf } from './report.js';
import type { Shop } from './shop.js';

/** A scenario prints what happened and returns what did not go as the SDK promises (empty: all well). */
export type Scenario = (shop: Shop) => Promise<string[]>;

/** How long recovery may take to finish the transaction left behind, before the demo gives up. */
const RECOVERY_WAIT_MS = 5_000;

export const confirmedOrder: Scenario = async (shop) => {
  header(1, 'alice pays 30 in cash and 10 in red packets: every try succeeds, so every participant confirms');
  const request = { orderId: 'o-1', userId: 'alice', capitalAmount: 30, redPacketAmount: 10 };
  const before = holdingsOf(shop, request.userId);
  await shop.orders.placeOrder(request);
  showSteps(shop);
  print(describeOrder(shop, request.orderId, before));
  return [
    ...expectOrder(shop, request, 'CONFIRMED'),
    ...expectHoldings(shop, request, paid(before, request)),
  ];
};

export const overdrawnOrder: Scenario = async (shop) => {
  header(2, 'bob orders for 80 in cash but has 50: the capital try throws, so both tries are cancelled');
  const request = { orderId: 'o-2', userId: 'bob', capitalAmount: 80, redPacketAmount: 5 };
  const before = holdingsOf(shop, request.userId);
  const error = await failureOf(shop.orders.placeOrder(request));
  showSteps(shop);
  print(`the caller got ${describeError(error)}`);
  print(describeOrder(shop, request.orderId, before));
  return [
    ...(error instanceof InsufficientFundsError
      ? []
      : [`o-2: expected InsufficientFundsError, got ${describeError(error)}`]),
    ...expectOrder(shop, request, 'CANCELLED'),
    ...expectHoldings(shop, request, before),
  ];
};

export const confirmFailsOnce: Scenario = async (shop) => {
  header(3, 'the red-packet confirm fails once: the transaction is committed, and recovery finishes it');
  const request = { orderId: 'o-3', userId: 'alice', capitalAmount: 20, redPacketAmount: 5 };
  const before = holdingsOf(shop, request.userId);
  shop.redPackets.failNextConfirm = true;
  const error = await failureOf(shop.orders.placeOrder(request));
  showSteps(shop);
  print(`the caller got ${describeError(error)}`);
  if (!(error instanceof ConfirmFailedError)) {
    return [`o-3: expected ConfirmFailedError (TCC_CONFIRM_FAILED), got ${describeError(error)}`];
  }
  const { storage } = shop.tcc;
  // A root's xid is its globalId.
  const stuck = await storage.get(error.globalId);
  print(`left in storage: ${stuck === undefined ? 'nothing' : describeRecord(stuck)}`);
  print(describeOrder(shop, request.orderId, before));

  const results: RecoveryResult[] = [];
  shop.tcc.startRecovery({ intervalMs: 50, onResult: (result) => results.push(result) });
  const finished = await waitUntil(
    async () => (await storage.count({ domain: shop.tcc.domain })) === 0,
    RECOVERY_WAIT_MS,
  );
  showSteps(shop, 'recovery ran');
  const attempts = results.filter((result) => result.xid === error.globalId).map((result) => result.outcome);
  print(`recovery attempts on ${error.globalId}: ${summarize(attempts)}`);
  const byRecovery = finished && attempts.at(-1) === 'confirmed';
  if (byRecovery) print('finished by recovery: the record is gone and the order is paid');
  print(describeOrder(shop, request.orderId, before));
  return [
    ...(stuck?.status === 'CONFIRMING'
      ? []
      : [`o-3: expected a CONFIRMING record, found ${stuck?.status ?? 'none'}`]),
    ...(byRecovery
      ? []
      : [
          `o-3: recovery did not finish the transaction within ${RECOVERY_WAIT_MS} ms (${summarize(attempts)})`,
        ]),
    ...expectOrder(shop, request, 'CONFIRMED'),
    ...expectHoldings(shop, request, paid(before, request)),
  ];
};

function expectOrder(shop: Shop, request: PlaceOrder, status: OrderStatus): string[] {
  const actual = shop.orders.order(request.orderId)?.status ?? 'missing';
  return actual === status ? [] : [`${request.orderId}: expected ${status}, the order is ${actual}`];
}

function paid(before: Holdings, request: PlaceOrder): Holdings {
  return {
    capital: before.capital - request.capitalAmount,
    redPacket: before.redPacket - request.redPacketAmount,
  };
}

function expectHoldings(shop: Shop, request: PlaceOrder, expected: Holdings): string[] {
  const now = holdingsOf(shop, request.userId);
  return now.capital === expected.capital && now.redPacket === expected.redPacket
    ? []
    : [
        `${request.orderId}: expected ${request.userId} to hold ${JSON.stringify(expected)}, holds ${JSON.stringify(now)}`,
      ];
}

function failureOf(work: Promise<unknown>): Promise<unknown> {
  return work.then(
    () => undefined,
    (error: unknown) => error,
  );
}

async function waitUntil(condition: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const giveUpAt = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > giveUpAt) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return true;
}

/** `failed, failed, parked` as `failed x2, parked`: a record that keeps failing is tried many times. */
function summarize(outcomes: readonly string[]): string {
  const runs: [outcome: string, count: number][] = [];
  for (const outcome of outcomes) {
    const last = runs.at(-1);
    if (last?.[0] === outcome) last[1]++;
    else runs.push([outcome, 1]);
  }
  return (
    runs.map(([outcome, count]) => (count === 1 ? outcome : `${outcome} x${count}`)).join(', ') || 'none'
  );
}

function header(n: number, title: string): void {
  console.log(`\n${n}. ${title}`);
}

function print(line: string): void {
  console.log(`   ${line}`);
}

function showSteps(shop: Shop, label = 'steps'): void {
  print(`${label}: ${shop.journal.take().join(' ')}`);
}
