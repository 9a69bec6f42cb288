import type { Clock } from '../clock.js';
import type { TransactionStorage } from '../storage/transaction-storage.js';
import type { TransactionRecord } from './record.js';

/**
 * The writes the runtime makes, each one compare-and-set on `version`. The record object is
 * the caller's working copy: it is changed in place and restored if the write fails.
 */
export class RecordLog {
  constructor(
    readonly storage: TransactionStorage,
    private readonly clock: Clock,
    /** How long finished roots are kept (0: deleted at once). */
    private readonly retainMs: number,
    /** How long finished branch tombstones are kept, to answer late or repeated commands. */
    private readonly tombstoneMs: number,
  ) {}

  create(record: TransactionRecord): Promise<void> {
    record.updatedAt = this.clock.now();
    return this.storage.create(record);
  }

  save(record: TransactionRecord): Promise<void> {
    const expected = record.version;
    const updatedAt = record.updatedAt;
    record.version = expected + 1;
    record.updatedAt = this.clock.now();
    return this.storage.update(record, expected).catch((error: unknown) => {
      record.version = expected;
      record.updatedAt = updatedAt;
      throw error;
    });
  }

  /** Ends a record: a root without retention is deleted, anything else becomes a tombstone. */
  finish(record: TransactionRecord, status: 'CONFIRMED' | 'CANCELLED'): Promise<void> {
    const keepFor = record.type === 'ROOT' ? this.retainMs : this.tombstoneMs;
    if (keepFor === 0) {
      record.status = status;
      return this.storage.remove(record.xid, record.version);
    }
    const expected = record.version;
    const now = this.clock.now();
    const done: TransactionRecord = { ...record, status, version: expected + 1, updatedAt: now };
    done.expiresAt = now + keepFor;
    return this.storage.complete(done, expected).then(() => {
      Object.assign(record, done);
    });
  }
}
