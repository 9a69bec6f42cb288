import type { Clock } from '../base/clock.js';
import { hasCode } from '../base/codes.js';
import type { TransactionRecord } from '../storage/record.js';
import type { TransactionStorage } from '../storage/transaction-storage.js';

/** Writes made to get a write acknowledged by the store's replicas, the first one included. */
const ACKNOWLEDGE_ATTEMPTS = 3;

/**
 * The writes the runtime makes, each one compare-and-set on `version`. The record object is
 * the caller's working copy: it is changed in place and restored if the write fails. Every
 * write also sets `dueAt`, the time recovery takes the record over unless it is written again.
 *
 * A write only resolves once the store's replicas have it (a store without replicas: at once).
 * One the primary applied but the replicas did not acknowledge in time (`ReplicationTimeoutError`)
 * is written again, unchanged but for its version, until one is acknowledged (which covers the
 * ones before it); if none is, the `ReplicationTimeoutError` is thrown with the working copy at
 * the version the primary holds, and the caller must not act on the write.
 */
export class RecordLog {
  constructor(
    readonly storage: TransactionStorage,
    private readonly clock: Clock,
    /** How long finished roots are kept (0: deleted at once). */
    private readonly retainMs: number,
    /** How long finished branch tombstones are kept, to answer late or repeated commands. */
    private readonly tombstoneMs: number,
    /** Length of a claim (`recovery.recoverAfterMs`): also the pause before a failed step is retried. */
    private readonly leaseMs: number,
  ) {}

  create(record: TransactionRecord): Promise<void> {
    const now = this.clock.now();
    record.updatedAt = now;
    record.dueAt = this.dueAt(record, now);
    return this.storage.create(record).catch((error: unknown) => this.#unacknowledged(record, error));
  }

  save(record: TransactionRecord): Promise<void> {
    return this.#update(record, true);
  }

  /**
   * One compare-and-set of the whole record. `acknowledge`: a write the replicas did not
   * acknowledge is written again (see the class); without it, it is thrown as it is.
   */
  #update(record: TransactionRecord, acknowledge: boolean): Promise<void> {
    const expected = record.version;
    const { updatedAt, dueAt } = record;
    const now = this.clock.now();
    record.version = expected + 1;
    record.updatedAt = now;
    record.dueAt = this.dueAt(record, now);
    return this.storage.update(record, expected).catch((error: unknown) => {
      // The primary has this one: the working copy stays at its version.
      if (hasCode(error, 'TCC_REPLICATION_TIMEOUT')) {
        if (acknowledge) return this.#unacknowledged(record, error);
        throw error;
      }
      record.version = expected;
      record.updatedAt = updatedAt;
      record.dueAt = dueAt;
      throw error;
    });
  }

  /** After a write the replicas did not acknowledge: writes again until one is (see the class). */
  async #unacknowledged(record: TransactionRecord, error: unknown): Promise<void> {
    if (!hasCode(error, 'TCC_REPLICATION_TIMEOUT')) throw error;
    let last: unknown = error;
    for (let attempt = 1; attempt < ACKNOWLEDGE_ATTEMPTS; attempt++) {
      try {
        await this.#update(record, false);
        return;
      } catch (again) {
        // Lost (a failover took the write away, or another writer came first): as any lost race.
        if (!hasCode(again, 'TCC_REPLICATION_TIMEOUT')) throw again;
        last = again;
      }
    }
    throw last;
  }

  /** Ends a record: a root without retention is deleted, anything else becomes a tombstone. */
  finish(record: TransactionRecord, status: 'CONFIRMED' | 'CANCELLED'): Promise<void> {
    const keepFor = record.keepFor ?? (record.type === 'ROOT' ? this.retainMs : this.tombstoneMs);
    if (keepFor === 0) {
      record.status = status;
      return this.storage.remove(record.xid, record.version);
    }
    const expected = record.version;
    const now = this.clock.now();
    const done: TransactionRecord = { ...record, status, version: expected + 1, updatedAt: now, dueAt: now };
    delete done.claim;
    done.expiresAt = now + keepFor;
    return this.storage.complete(done, expected).then(() => {
      Object.assign(record, done);
      delete record.claim;
    });
  }

  /**
   * When recovery should look at the record next: when the claim of the driver writing it ends,
   * when the try's deadline passes (a branch that ended its try acts a lease after that, unless
   * recovery already failed at it: then a lease after that attempt), or, for a confirm or cancel
   * that nobody drives (one that failed), a lease from now.
   */
  private dueAt(record: TransactionRecord, now: number): number {
    if (record.claim !== undefined) {
      // A try's claim: recovery has nothing to do before the deadline either way.
      return record.status === 'TRYING' ? Math.max(record.claim.until, record.deadline) : record.claim.until;
    }
    switch (record.status) {
      case 'TRYING':
        return record.deadline;
      case 'TRIED':
      case 'TRY_FAILED': {
        const due = record.deadline + this.leaseMs;
        return record.retries > 0 ? Math.max(due, now + this.leaseMs) : due;
      }
      default:
        return now + this.leaseMs;
    }
  }
}
