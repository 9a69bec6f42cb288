import type { TransactionRecord, TransactionStorage } from '@tcc/core';

/** Thrown in place of a process death: everything after it in the old process is void. */
export class SimulatedCrash extends Error {}

/**
 * Lets writes reach the real store until `crashAfter` says so, then behaves like a process that
 * died right after that write landed: the write is kept, and this store refuses everything else.
 */
export class CrashingStorage implements TransactionStorage {
  dead = false;

  constructor(
    readonly inner: TransactionStorage,
    private readonly crashAfter: (op: string, record: TransactionRecord | undefined) => boolean,
  ) {}

  private async write<T>(
    op: string,
    record: TransactionRecord | undefined,
    run: () => Promise<T>,
  ): Promise<T> {
    if (this.dead) throw new SimulatedCrash('process is dead');
    const result = await run();
    if (this.crashAfter(op, record)) {
      this.dead = true;
      throw new SimulatedCrash(`crashed right after ${op} ${record?.status ?? ''}`);
    }
    return result;
  }

  create(record: TransactionRecord) {
    return this.write('create', record, () => this.inner.create(record));
  }
  update(record: TransactionRecord, expectedVersion: number) {
    return this.write('update', record, () => this.inner.update(record, expectedVersion));
  }
  complete(record: TransactionRecord, expectedVersion: number) {
    return this.write('complete', record, () => this.inner.complete(record, expectedVersion));
  }
  remove(xid: string, expectedVersion: number) {
    return this.write('remove', undefined, () => this.inner.remove(xid, expectedVersion));
  }
  private read<T>(run: () => Promise<T>): Promise<T> {
    return this.dead ? Promise.reject(new SimulatedCrash('process is dead')) : run();
  }

  get(xid: string) {
    return this.read(() => this.inner.get(xid));
  }
  findStuck(query: Parameters<TransactionStorage['findStuck']>[0]) {
    return this.read(() => this.inner.findStuck(query));
  }
  list(query: Parameters<TransactionStorage['list']>[0]) {
    return this.read(() => this.inner.list(query));
  }
  count(query: Parameters<TransactionStorage['count']>[0]) {
    return this.read(() => this.inner.count(query));
  }
  close() {
    return this.inner.close();
  }
}
