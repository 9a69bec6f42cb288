import { StorageError } from '../errors.js';
import { TERMINAL_STATUSES, type TransactionRecord } from '../record.js';

// The version and terminal-status rules of the three writes, in one wording for all stores.
// A store runs the guard of a write before it touches anything, so a refused write changes
// nothing and every store refuses the same records.

/**
 * What `create` may store: a first version, and for a terminal record (an empty rollback's
 * tombstone) the time it may be forgotten.
 *
 * @returns the tombstone's `expiresAt`, or `undefined` for a live record.
 * @throws {StorageError} naming the transaction and the field.
 */
export function checkCreate(record: TransactionRecord): number | undefined {
  if (record.version !== 1) {
    throw new StorageError(`create of transaction ${record.xid}: version must be 1, got ${record.version}`);
  }
  return TERMINAL_STATUSES.has(record.status) ? requireExpiresAt('create', record) : undefined;
}

/**
 * What `update` may store: the next version of a live record. A terminal status is refused
 * because only `complete` turns a record into a tombstone that expires; through `update` it
 * would be kept for ever.
 *
 * @throws {StorageError} naming the transaction and the field.
 */
export function checkUpdate(record: TransactionRecord, expectedVersion: number): void {
  requireNextVersion('update', record, expectedVersion);
  if (TERMINAL_STATUSES.has(record.status)) {
    throw new StorageError(
      `update of transaction ${record.xid}: status ${record.status} is terminal, write it with complete()`,
    );
  }
}

/**
 * What `complete` may store: the next version, in a terminal status, with its `expiresAt`.
 *
 * @returns the tombstone's `expiresAt`.
 * @throws {StorageError} naming the transaction and the field.
 */
export function checkComplete(record: TransactionRecord, expectedVersion: number): number {
  requireNextVersion('complete', record, expectedVersion);
  if (!TERMINAL_STATUSES.has(record.status)) {
    throw new StorageError(
      `complete of transaction ${record.xid}: status ${record.status} is not terminal (CONFIRMED or CANCELLED)`,
    );
  }
  return requireExpiresAt('complete', record);
}

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
