import type { TransactionRecord, TransactionStorage } from '@tcc/core';

/** Wraps a store and counts the writes that reach it. */
export class CountingStorage implements TransactionStorage {
  writes = 0;
  readonly log: string[] = [];

  constructor(readonly inner: TransactionStorage) {}

  create(record: TransactionRecord) {
    this.tally(`create ${record.status}`);
    return this.inner.create(record);
  }
  update(record: TransactionRecord, expectedVersion: number) {
    this.tally(`update ${record.status}`);
    return this.inner.update(record, expectedVersion);
  }
  complete(record: TransactionRecord, expectedVersion: number) {
    this.tally(`complete ${record.status}`);
    return this.inner.complete(record, expectedVersion);
  }
  remove(xid: string, expectedVersion: number) {
    this.tally('remove');
    return this.inner.remove(xid, expectedVersion);
  }
  get(xid: string) {
    return this.inner.get(xid);
  }
  findStuck(query: Parameters<TransactionStorage['findStuck']>[0]) {
    return this.inner.findStuck(query);
  }
  list(query: Parameters<TransactionStorage['list']>[0]) {
    return this.inner.list(query);
  }
  count(query: Parameters<TransactionStorage['count']>[0]) {
    return this.inner.count(query);
  }
  close() {
    return this.inner.close();
  }
  private tally(write: string): void {
    this.writes++;
    this.log.push(write);
  }
}

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
