import type { TransactionRecord, TransactionStorage } from '@tcc/core';

/** Eight writers (each its own store and client) race a CAS on one record, `rounds` times. */
export async function raceWriters(
  stores: readonly TransactionStorage[],
  first: TransactionRecord,
  rounds: number,
): Promise<{ winners: number[]; final: TransactionRecord }> {
  await stores[0]!.create(first);
  let current = first;
  const winners: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const attempts = stores.map((_, writer) => ({
      ...current,
      version: current.version + 1,
      retries: current.retries + 1,
      attachments: { writer: `${writer}`, round: `${round}` },
    }));
    const results = await Promise.allSettled(stores.map((s, i) => s.update(attempts[i]!, current.version)));
    const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
    for (const r of results) {
      if (r.status === 'rejected' && (r.reason as { code?: string }).code !== 'TCC_OPTIMISTIC_LOCK')
        throw r.reason;
    }
    winners.push(won.length);
    if (won.length !== 1) break;
    current = attempts[won[0]!]!;
  }
  return { winners, final: current };
}
