import type { TransactionRecord } from '../storage/record.js';
import type { TransactionStorage } from '../storage/transaction-storage.js';

/**
 * Wraps a store and counts the writes that reach it (`writes`, and `log` of `<op> <status>`):
 * how the tests of every store check the k + 2 writes of a root.
 */
export class CountingStorage implements TransactionStorage {
  writes = 0;
  readonly log: string[] = [];

  constructor(readonly inner: TransactionStorage) {}

  /** As linearizable as the store it wraps. */
  get linearizable(): boolean {
    return this.inner.linearizable === true;
  }

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
  private tally(write: string): void {
    this.writes++;
    this.log.push(write);
  }
  close() {
    return this.inner.close();
  }
}
