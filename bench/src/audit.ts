import { accountOf, SOLD_OUT, skuOf } from './fixtures.js';
import type { Scenario } from './scenario.js';
import { expectedAfter, KEYS } from './workload.js';

const SHOWN = 3;

/**
 * Compares what a scenario's books and tally say with what `ran` transactions of its workload
 * must have done, to the unit: a run that skipped work, confirmed twice, or left a cancel
 * half-done cannot pass. `ran` is counted by the load loops, apart from the scenario's own
 * counters. Returns the breaches (empty: all is well).
 */
export function audit(s: Scenario, ran: number): string[] {
  const { books, tally } = s;
  const want = expectedAfter(tally.work, ran);
  const problems: string[] = [];
  const differ = (what: string, got: number, expected: number): void => {
    if (got !== expected) problems.push(`${what} ${got}, expected ${expected}`);
  };

  differ('transactions started', s.started(), ran);
  if (tally.unexpected > 0)
    problems.push(`${tally.unexpected} unexpected outcomes (${tally.examples.join('; ')})`);
  differ(`confirmed + cancelled (of ${ran} run)`, tally.confirmed + tally.cancelled, ran);
  differ('confirmed', tally.confirmed, want.confirmed);
  differ('cancelled', tally.cancelled, want.cancelled);
  differ(`money spent (${want.confirmed} confirmed transactions)`, books.spent, want.spent);
  differ(`stock shipped (${want.confirmed} confirmed transactions)`, books.shipped, want.shipped);

  // Key by key: a cancel that did not give back, or gave back twice, shows here even when the
  // totals happen to balance.
  const wrong: string[] = [];
  for (let i = 0; i < KEYS; i++) {
    const balance = books.balances.get(accountOf(i));
    const stock = books.stock.get(skuOf(i));
    if (balance !== books.opening - want.spentByAccount[i]!)
      wrong.push(`${accountOf(i)} holds ${balance}, expected ${books.opening - want.spentByAccount[i]!}`);
    if (stock !== books.opening - want.shippedBySku[i]!)
      wrong.push(`${skuOf(i)} holds ${stock}, expected ${books.opening - want.shippedBySku[i]!}`);
  }
  if (wrong.length > 0)
    problems.push(`${wrong.length} accounts or skus off (${wrong.slice(0, SHOWN).join('; ')})`);
  differ(`stock of ${SOLD_OUT}`, books.stock.get(SOLD_OUT) ?? Number.NaN, 0);
  differ('holds still frozen', books.frozen.size, 0);
  differ('reservations still open', books.reserved.size, 0);
  const left = s.storedRecords();
  if (left !== undefined) differ('records left in the store', left, 0);
  return problems;
}

/** Throws, naming every breach, unless {@link audit} finds none. */
export function assertAudit(label: string, s: Scenario, ran: number): void {
  const problems = audit(s, ran);
  if (problems.length > 0) throw new Error(`${label}: the check failed: ${problems.join('; ')}`);
}
