import { describeValue } from '../base/checks.js';
import { StorageError } from './errors.js';
import type { TransactionRecord } from './record.js';

// Checks every TransactionStorage makes on what it is handed, in one wording for all stores.

/** A write replaces `expectedVersion` with the next one: `record.version` must be just that. */
export function requireNextVersion(
  operation: string,
  record: TransactionRecord,
  expectedVersion: number,
): void {
  if (!Number.isInteger(expectedVersion) || record.version !== expectedVersion + 1) {
    throw new StorageError(
      `${operation} of transaction ${record.xid}: record.version must be expectedVersion + 1 = ` +
        `${expectedVersion + 1}, got ${record.version}`,
    );
  }
}

/** A finished (tombstone) record carries when it may be forgotten; returns it. */
export function requireExpiresAt(operation: string, record: TransactionRecord): number {
  const { expiresAt } = record;
  if (typeof expiresAt !== 'number' || !Number.isFinite(expiresAt)) {
    throw new StorageError(
      `${operation} of transaction ${record.xid}: a ${record.status} record needs expiresAt, got ${String(expiresAt)}`,
    );
  }
  return expiresAt;
}

/** A page size: a positive integer. */
export function requireLimit(operation: string, limit: unknown): number {
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1) {
    throw new StorageError(`${operation}: limit must be a positive integer, got ${describeValue(limit)}`);
  }
  return limit;
}
