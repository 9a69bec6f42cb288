import type { Ledger } from './ledger.js';
import { describeRecord } from './report.js';
import type { Shop } from './shop.js';

/**
 * The invariants the SDK exists to keep, checked after every scenario has ended: no money was
 * created or lost, nothing is left frozen, and no transaction is left for recovery.
 * Prints the sums and returns what is wrong (empty: all well).
 */
export async function audit(shop: Shop): Promise<string[]> {
  const problems = [shop.capital.ledger, shop.redPackets.ledger].flatMap(auditLedger);
  if (problems.length === 0) console.log('balances add up');
  const left = (await shop.tcc.storage.list({})).records;
  for (const record of left) problems.push(`transaction record left in storage: ${describeRecord(record)}`);
  if (left.length === 0) console.log('no transaction record left in storage');
  return problems;
}

function auditLedger(ledger: Ledger): string[] {
  const accounts = ledger.accounts().map(([account, balance]) => `${account} ${balance}`);
  const frozen = ledger.frozenTotal();
  const total = ledger.total();
  console.log(
    `${ledger.currency}: ${accounts.join(' + ')} + frozen ${frozen} = ${total} (opened with ${ledger.openingTotal})`,
  );
  const problems: string[] = [];
  if (total !== ledger.openingTotal) {
    problems.push(`${ledger.currency}: the books hold ${total}, but opened with ${ledger.openingTotal}`);
  }
  if (frozen !== 0) problems.push(`${ledger.currency}: ${frozen} is still frozen after every order ended`);
  return problems;
}
