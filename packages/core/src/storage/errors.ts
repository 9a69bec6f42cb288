import { TccError } from '../base/errors.js';
import type { TransactionStatus } from './record.js';

/** A compare-and-set lost: the record changed (or vanished) since it was read. */
export class OptimisticLockError extends TccError {
  readonly xid: string;
  readonly expectedVersion: number;

  constructor(xid: string, expectedVersion: number, actual: number | undefined) {
    super(
      'TCC_OPTIMISTIC_LOCK',
      actual === undefined
        ? `transaction ${xid}: expected version ${expectedVersion} but the record does not exist`
        : `transaction ${xid}: expected version ${expectedVersion} but found version ${actual}`,
    );
    this.xid = xid;
    this.expectedVersion = expectedVersion;
  }
}

/**
 * `create` of an xid that is already stored; also `tcc.transaction(fn, { id })` with an id that
 * already ran (or is running), whose body was therefore not run again.
 */
export class DuplicateTransactionError extends TccError {
  readonly xid: string;
  /** Status of the record already stored under the xid, where the runtime read it. */
  readonly status: TransactionStatus | undefined;
  /**
   * What became of that transaction, where the log still has it: `confirmed` once its commit
   * point (CONFIRMING) was written, `cancelled` once it was cancelled, `pending` while it tries.
   */
  readonly outcome: 'confirmed' | 'cancelled' | 'pending' | undefined;

  constructor(xid: string, status?: TransactionStatus) {
    const outcome = outcomeOf(status);
    super(
      'TCC_DUPLICATE_TRANSACTION',
      status === undefined
        ? `transaction ${xid} already exists`
        : `transaction ${xid} already exists (${status}: ${outcome === 'pending' ? 'still trying' : outcome})`,
    );
    this.xid = xid;
    this.status = status;
    this.outcome = outcome;
  }
}

function outcomeOf(status: TransactionStatus | undefined): DuplicateTransactionError['outcome'] {
  switch (status) {
    case undefined:
      return undefined;
    case 'CONFIRMING':
    case 'CONFIRMED':
      return 'confirmed';
    case 'CANCELLING':
    case 'CANCELLED':
    case 'TRY_FAILED':
      return 'cancelled';
    default:
      return 'pending';
  }
}

/** A stored record that cannot be read back (bad JSON, missing fields). */
export class CorruptRecordError extends TccError {
  readonly key: string;

  constructor(key: string, reason: string, options?: ErrorOptions) {
    super('TCC_CORRUPT_RECORD', `stored transaction record ${key} is corrupt: ${reason}`, options);
    this.key = key;
  }
}

/** The store could not be reached or answered with an error. */
export class StorageError extends TccError {
  constructor(message: string, options?: ErrorOptions) {
    super('TCC_STORAGE', message, options);
  }
}

/**
 * A write the primary applied, but that fewer replicas than the store requires acknowledged in
 * time (Redis `WAIT`). Its outcome is unknown rather than failed: the primary keeps it unless a
 * failover comes before a replica has it. The runtime never acts on such a write: it writes
 * again (a later acknowledged write covers the earlier ones) and, if that does not get through
 * either, stops without confirming or cancelling anything.
 */
export class ReplicationTimeoutError extends TccError {
  readonly xid: string;
  readonly acknowledged: number;
  readonly required: number;
  readonly elapsedMs: number;

  constructor(xid: string, acknowledged: number, required: number, elapsedMs: number, where: string) {
    super(
      'TCC_REPLICATION_TIMEOUT',
      `transaction ${xid}: ${acknowledged} of ${required} replicas acknowledged the write ` +
        `within ${elapsedMs} ms (${where})`,
    );
    this.xid = xid;
    this.acknowledged = acknowledged;
    this.required = required;
    this.elapsedMs = elapsedMs;
  }
}

/**
 * A try arrived after its transaction was cancelled or its deadline passed; it was not run.
 * It lives with the log's errors because what proves a try hanging is written there: the
 * branch's record, or the barrier's fence row.
 */
export class TransactionHangingError extends TccError {
  readonly globalId: string;

  constructor(globalId: string, detail: string) {
    super('TCC_TRANSACTION_HANGING', `try of transaction ${globalId} refused: ${detail}`);
    this.globalId = globalId;
  }
}

/**
 * The store's data was laid out by another schema version than this code reads and writes:
 * never migrated or older (migrate it), newer (a later release wrote it: upgrade), or, for
 * Redis, marked with another layout (`buckets`) or not a marker at all. The store refuses to
 * read or write rather than misread. No retry can fix it, so it is not a `StorageError`.
 */
export class SchemaVersionError extends TccError {
  /**
   * Where the store records its schema version: the Redis marker key (with the client's
   * `keyPrefix`), or the SQL migrations table (`"schema"."table_migrations"`).
   */
  readonly key: string;
  /** Version found there; `undefined` when none was recorded (never migrated) or it is unreadable. */
  readonly found: number | undefined;
  /** The version this code reads and writes. */
  readonly expected: number;

  constructor(message: string, where: { key: string; found: number | undefined; expected: number }) {
    super('TCC_SCHEMA_VERSION', message);
    this.key = where.key;
    this.found = where.found;
    this.expected = where.expected;
  }
}
