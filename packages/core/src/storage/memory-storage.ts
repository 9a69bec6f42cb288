import { DuplicateTransactionError, OptimisticLockError, StorageError } from './errors.js';
import { compareKey, cutPage, type PageKey, toPage } from './kit/keyset.js';
import { copyRecord } from './kit/next-version.js';
import { checkFindStuck, checkList } from './kit/query-checks.js';
import { isExpired, isStuck } from './kit/record-state.js';
import { checkComplete, checkCreate, checkUpdate } from './kit/write-guards.js';
import { TERMINAL_STATUSES, type TransactionRecord } from './record.js';
import type { FindStuckQuery, ListQuery, Page, TransactionStorage } from './transaction-storage.js';

/** Options of {@link MemoryStorage}. */
export interface MemoryStorageOptions {
  /** Source of "now" for tombstone expiry (ms since the epoch). Defaults to `Date`. */
  clock?: { now(): number };
  /**
   * How often expired tombstones are dropped, in ms (default 60 000). Reads never return an
   * expired tombstone anyway; the sweep only keeps memory flat when nobody reads them.
   */
  sweepIntervalMs?: number;
}

/** What a {@link MemoryStorage} holds right now, for tests and benchmarks that watch memory. */
export interface MemoryStorageStats {
  /** Records held, including tombstones that expired but were not swept yet. */
  records: number;
  /** Terminal records (CONFIRMED, CANCELLED) held until their `expiresAt`. */
  tombstones: number;
  /** Records `findStuck` looks at: unfinished and not parked. */
  stuck: number;
}

const DEFAULT_SWEEP_INTERVAL_MS = 60_000;

/**
 * A {@link TransactionStorage} in this process's memory.
 *
 * **No durability**: everything is lost when the process exits, so a crash loses the
 * transactions it was meant to recover. Use it for tests, benchmarks and single-process
 * programs that accept that; use `@tcc/storage-redis` or `@tcc/storage-sql` otherwise.
 *
 * Every write and `get` is a constant number of `Map` operations. Records are copied on the
 * way in and out (the record, each participant and `attachments`; participant `args` is an
 * immutable string), so no caller can change stored state behind the store's back.
 * `findStuck` only looks at a per-domain index of stuck, unparked records, never at
 * finished ones.
 */
export class MemoryStorage implements TransactionStorage {
  /** Every write is in this process's memory: a read returns the last one (see `TransactionStorage.linearizable`). */
  readonly linearizable: boolean = true;
  private readonly clock: { now(): number };
  private readonly records = new Map<string, TransactionRecord>();
  /** domain -> xid -> record, for records in a stuck status and not parked. */
  private readonly stuck = new Map<string, Map<string, TransactionRecord>>();
  /** xids of terminal records, so the sweep never walks live ones. */
  private readonly tombstones = new Set<string>();
  private readonly sweeper: NodeJS.Timeout;
  private closed = false;

  constructor(options: MemoryStorageOptions = {}) {
    this.clock = options.clock ?? Date;
    const interval = options.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS;
    if (!Number.isFinite(interval) || interval <= 0) {
      throw new StorageError(`MemoryStorage: sweepIntervalMs must be a positive number, got ${interval}`);
    }
    this.sweeper = setInterval(() => this.sweep(), interval);
    // The sweep is housekeeping: it must not keep a finished program alive.
    this.sweeper.unref();
  }

  async create(record: TransactionRecord): Promise<void> {
    this.assertOpen();
    // A terminal record may be created directly, e.g. the CANCELLED tombstone of an empty rollback.
    const expiresAt = checkCreate(record);
    if (this.live(record.xid) !== undefined) throw new DuplicateTransactionError(record.xid);
    if (expiresAt !== undefined && expiresAt <= this.clock.now()) return;
    this.write(copyRecord(record), undefined);
  }

  async update(record: TransactionRecord, expectedVersion: number): Promise<void> {
    this.assertOpen();
    checkUpdate(record, expectedVersion);
    const previous = this.checkVersion(record.xid, expectedVersion);
    this.write(copyRecord(record), previous);
  }

  async complete(record: TransactionRecord, expectedVersion: number): Promise<void> {
    this.assertOpen();
    const expiresAt = checkComplete(record, expectedVersion);
    const previous = this.checkVersion(record.xid, expectedVersion);
    if (expiresAt <= this.clock.now()) this.forget(previous);
    else this.write(copyRecord(record), previous);
  }

  async remove(xid: string, expectedVersion: number): Promise<void> {
    this.assertOpen();
    this.forget(this.checkVersion(xid, expectedVersion));
  }

  async get(xid: string): Promise<TransactionRecord | undefined> {
    this.assertOpen();
    const record = this.live(xid);
    return record === undefined ? undefined : copyRecord(record);
  }

  async findStuck(query: FindStuckQuery): Promise<Page> {
    this.assertOpen();
    const { limit, dueBefore, after } = checkFindStuck(query);
    const index = this.stuck.get(query.domain);
    if (index === undefined) return { records: [] };

    const due: TransactionRecord[] = [];
    for (const record of index.values()) {
      if (record.dueAt >= dueBefore) continue;
      if (after !== undefined && compareKey(record.dueAt, record.xid, ...after) <= 0) continue;
      due.push(record);
    }
    due.sort(byDue);
    return page('findStuck', due, limit, (r) => [r.dueAt, r.xid]);
  }

  async list(query: ListQuery): Promise<Page> {
    this.assertOpen();
    const { limit, after } = checkList(query);
    const matching = this.matching(query).filter(
      (r) => after === undefined || compareKey(r.createdAt, r.xid, ...after) > 0,
    );
    matching.sort(byCreated);
    return page('list', matching, limit, (r) => [r.createdAt, r.xid]);
  }

  async count(query: Omit<ListQuery, 'limit' | 'cursor'>): Promise<number> {
    this.assertOpen();
    return this.matching(query).length;
  }

  /**
   * Closes the store and drops everything it held. Afterwards every other method rejects with
   * a `StorageError`; closing again does nothing.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweeper);
    this.records.clear();
    this.stuck.clear();
    this.tombstones.clear();
  }

  /**
   * Drops the tombstones whose `expiresAt` has passed and returns how many. Runs by itself
   * every `sweepIntervalMs`; call it to reclaim memory at a moment of your choosing.
   */
  sweep(): number {
    const now = this.clock.now();
    let dropped = 0;
    for (const xid of this.tombstones) {
      const record = this.records.get(xid);
      if (record === undefined || isExpired(record, now)) {
        if (record === undefined) this.tombstones.delete(xid);
        else this.forget(record);
        dropped += 1;
      }
    }
    return dropped;
  }

  /** Sizes of what the store holds; cheap, for tests and benchmarks. */
  stats(): MemoryStorageStats {
    let stuck = 0;
    for (const index of this.stuck.values()) stuck += index.size;
    return { records: this.records.size, tombstones: this.tombstones.size, stuck };
  }

  private assertOpen(): void {
    if (this.closed) throw new StorageError('memory storage is closed');
  }

  /** The stored record, unless it is a tombstone past its `expiresAt` (then it is dropped). */
  private live(xid: string): TransactionRecord | undefined {
    const record = this.records.get(xid);
    // Only tombstones expire, and most records are not: skip the clock for them.
    if (record === undefined || record.expiresAt === undefined || !TERMINAL_STATUSES.has(record.status)) {
      return record;
    }
    if (!isExpired(record, this.clock.now())) return record;
    this.forget(record);
    return undefined;
  }

  /** The compare-and-set check shared by every write. */
  private checkVersion(xid: string, expectedVersion: number): TransactionRecord {
    const current = this.live(xid);
    if (current === undefined || current.version !== expectedVersion) {
      throw new OptimisticLockError(xid, expectedVersion, current?.version);
    }
    return current;
  }

  private write(stored: TransactionRecord, previous: TransactionRecord | undefined): void {
    this.records.set(stored.xid, stored);
    if (isStuck(stored)) {
      let index = this.stuck.get(stored.domain);
      if (index === undefined) {
        // Kept when it empties again: domains are few, and a busy domain empties often.
        index = new Map();
        this.stuck.set(stored.domain, index);
      }
      // Most writes move a stuck record to its next stuck state: overwrite its entry in place
      // rather than delete and re-add it, which churns the Map's storage.
      if (previous !== undefined && (previous.domain !== stored.domain || !isStuck(previous))) {
        this.unindex(previous);
      }
      index.set(stored.xid, stored);
    } else {
      if (previous !== undefined) this.unindex(previous);
      if (TERMINAL_STATUSES.has(stored.status)) this.tombstones.add(stored.xid);
    }
  }

  private forget(record: TransactionRecord): void {
    this.records.delete(record.xid);
    this.unindex(record);
  }

  private unindex(record: TransactionRecord): void {
    if (isStuck(record)) this.stuck.get(record.domain)?.delete(record.xid);
    else if (TERMINAL_STATUSES.has(record.status)) this.tombstones.delete(record.xid);
  }

  /** Live records matching an operator's filter, dropping expired tombstones on the way. */
  private matching(query: Omit<ListQuery, 'limit' | 'cursor'>): TransactionRecord[] {
    const now = this.clock.now();
    const { domain, status, type, parked } = query;
    const out: TransactionRecord[] = [];
    for (const record of this.records.values()) {
      if (isExpired(record, now)) {
        this.forget(record);
        continue;
      }
      if (domain !== undefined && record.domain !== domain) continue;
      if (status !== undefined && record.status !== status) continue;
      if (type !== undefined && record.type !== type) continue;
      if (parked !== undefined && (record.parkedAt !== undefined) !== parked) continue;
      out.push(record);
    }
    return out;
  }
}

const byDue = (a: TransactionRecord, b: TransactionRecord) => compareKey(a.dueAt, a.xid, b.dueAt, b.xid);
const byCreated = (a: TransactionRecord, b: TransactionRecord) =>
  compareKey(a.createdAt, a.xid, b.createdAt, b.xid);

/** One page of `sorted`, copied out. */
function page(
  operation: string,
  sorted: TransactionRecord[],
  limit: number,
  keyOf: (record: TransactionRecord) => PageKey,
): Page {
  const { rows, cursor } = cutPage(operation, sorted, limit, keyOf);
  return toPage(rows.map(copyRecord), cursor);
}
