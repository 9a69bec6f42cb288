import type { TransactionRecord, TransactionStatus, TransactionType } from './record.js';

/** Query of {@link TransactionStorage.findStuck}. */
export interface FindStuckQuery {
  domain: string;
  /** Only records whose `dueAt` is strictly before this time (ms since the epoch): usually now. */
  dueBefore: number;
  limit: number;
  /** Opaque cursor returned by the previous page; omit for the first page. */
  cursor?: string;
}

/** Filter of {@link TransactionStorage.list} and {@link TransactionStorage.count}, for operators. */
export interface ListQuery {
  domain?: string;
  status?: TransactionStatus;
  type?: TransactionType;
  /** `true`: only parked records; `false`: only records not parked; omitted: both. */
  parked?: boolean;
  limit?: number;
  cursor?: string;
}

/** One page of records and the cursor of the next page, absent on the last page. */
export interface Page {
  records: TransactionRecord[];
  cursor?: string;
}

/**
 * The transaction log. Every backend passes the conformance suite of `@tcc/core/testing`.
 *
 * Rules every implementation keeps:
 * - writes are atomic compare-and-sets on `version`; a lost race is an `OptimisticLockError`;
 * - the store keeps no reference to objects passed in and returns fresh objects from reads;
 * - `findStuck` returns records in a stuck status (every status but CONFIRMED and CANCELLED,
 *   see `STUCK_STATUSES`) that are not parked, ordered by `(dueAt, xid)`, and its cost does not
 *   grow with finished records;
 * - terminal records (CONFIRMED, CANCELLED) are never stuck, are written only by `complete` or
 *   by `create` with an `expiresAt` (an empty-rollback tombstone), and disappear once
 *   `expiresAt <= now`, after which the xid may be created again;
 * - an update replaces the whole record: optional fields it leaves out (`parkedAt`,
 *   `lastError`) are gone afterwards;
 * - `list` and `count` include live tombstones; `list` returns 100 records when no limit is given;
 * - xids compare by code unit (PostgreSQL: `COLLATE "C"`);
 * - `close()` may be called twice; every other method rejects after it.
 */
export interface TransactionStorage {
  /**
   * `true` only if no write this store acknowledged is ever lost: a read returns the last
   * acknowledged write of a record, or a later one. The runtime then answers a branch's
   * confirm or cancel command from the copy of the TRIED record this process wrote itself,
   * without reading it first: the command's compare-and-set on that version fails, and the
   * record is read, if anything wrote it since. A store that can lose an acknowledged write
   * (asynchronous replication with failover: Redis with or without `replicas`, a PostgreSQL
   * with an asynchronous standby) must leave it out: after a lost write another driver could
   * store a different record under the same version, and a compare-and-set from the copy
   * would succeed over it.
   */
  readonly linearizable?: boolean;
  /**
   * Stores a new record (`version` 1). Throws `DuplicateTransactionError` if the xid exists,
   * including as a live tombstone.
   */
  create(record: TransactionRecord): Promise<void>;
  /**
   * Replaces the record whose stored version is `expectedVersion` with `record`
   * (whose `version` is `expectedVersion + 1`). Throws `OptimisticLockError` otherwise,
   * including when the record does not exist.
   */
  update(record: TransactionRecord, expectedVersion: number): Promise<void>;
  /**
   * Like `update` for a terminal record: it leaves the stuck index and is kept as a
   * tombstone until `record.expiresAt` (required).
   */
  complete(record: TransactionRecord, expectedVersion: number): Promise<void>;
  /** Deletes the record if its stored version is `expectedVersion`, else `OptimisticLockError`. */
  remove(xid: string, expectedVersion: number): Promise<void>;
  /** The record, or `undefined` if it does not exist or its tombstone expired. */
  get(xid: string): Promise<TransactionRecord | undefined>;
  findStuck(query: FindStuckQuery): Promise<Page>;
  list(query: ListQuery): Promise<Page>;
  count(query: Omit<ListQuery, 'limit' | 'cursor'>): Promise<number>;
  close(): Promise<void>;
}
