import { TccError } from '../tcc-error.js';

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

/** `create` of an xid that is already stored. */
export class DuplicateTransactionError extends TccError {
  readonly xid: string;

  constructor(xid: string) {
    super('TCC_DUPLICATE_TRANSACTION', `transaction ${xid} already exists`);
    this.xid = xid;
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
