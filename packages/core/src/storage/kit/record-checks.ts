import { describeValue } from '../../base/checks.js';
import { StorageError } from '../errors.js';
import type { TransactionRecord } from '../record.js';

/**
 * Refuses a record whose indexed fields have the wrong types, naming the field, before a
 * remote store sees it: it would otherwise build keys from `undefined`, or answer with a
 * driver error that reads like an outage (an integer column handed `1.5`). Times, versions
 * and retries are integers, as the runtime writes them and as SQL columns hold them.
 *
 * MemoryStorage does not call it: it indexes nothing it could misfile and keeps what it is
 * given as it is.
 *
 * @throws {StorageError} naming the operation, the transaction and the field.
 */
export function checkRecord(operation: string, record: TransactionRecord): void {
  if (record === null || typeof record !== 'object') {
    throw new StorageError(`${operation}: expected a transaction record, got ${describeValue(record)}`);
  }
  const { xid } = record;
  requireXid(operation, xid);
  for (const field of ['globalId', 'domain', 'type', 'status'] as const) {
    if (typeof record[field] !== 'string') {
      throw new StorageError(
        `${operation} of transaction ${xid}: ${field} must be a string, got ${describeValue(record[field])}`,
      );
    }
  }
  for (const field of ['version', 'retries', 'createdAt', 'updatedAt', 'deadline', 'dueAt'] as const) {
    if (!Number.isSafeInteger(record[field])) {
      throw new StorageError(
        `${operation} of transaction ${xid}: ${field} must be an integer, got ${describeValue(record[field])}`,
      );
    }
  }
  if (!Array.isArray(record.participants)) {
    throw new StorageError(`${operation} of transaction ${xid}: participants must be an array`);
  }
}

/** An xid a store can key a record by: a non-empty string. */
export function requireXid(operation: string, xid: unknown): asserts xid is string {
  if (typeof xid !== 'string' || xid === '') {
    throw new StorageError(`${operation}: xid must be a non-empty string, got ${describeValue(xid)}`);
  }
}
