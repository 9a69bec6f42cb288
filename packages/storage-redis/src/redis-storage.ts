import * as kit from '@tcc/core/storage';
import {
  type CorruptRecordHandler,
  DuplicateTransactionError,
  describeValue,
  type FindStuckQuery,
  type ListQuery,
  OptimisticLockError,
  type Page,
  type PageKey,
  StorageError,
  type TransactionRecord,
  type TransactionStorage,
} from '@tcc/core/storage';
import { COMMAND, defineCommands } from './commands.js';
import { KeySpace } from './key-space.js';
import { type IndexEntry, type IndexSource, KeysetMerge } from './keyset-merge.js';
import { NodeCalls } from './node-calls.js';
import { type RedisStorageOptions, resolveSettings } from './options.js';
import { SchemaMarker } from './schema-marker.js';
import { type RedisNode, Topology } from './topology.js';

const SWEEP_BATCH = 1_000;
const COUNT_CHUNK = 500;

/**
 * A {@link TransactionStorage} in Redis, through ioredis: standalone, Sentinel-managed,
 * Cluster, or client-side shards.
 *
 * Every write is one Lua script (`EVALSHA`) that does the compare-and-set on `version` and the
 * index maintenance together; on a standalone client the writes of one tick go as one script
 * (`batch-n.lua`, up to 16 writes), each with its own reply. Records
 * live in hashes `<prefix>{b<n>}:tx:<xid>` (fields `v` version, `d` domain, `c` createdAt, `r` the record
 * as JSON, `t` on tombstones, `s` the stuck mark: where the stuck index has the record, as of
 * which version); `n = fnv1a(xid) % buckets`. Per bucket, sorted sets index the
 * records: `stuck:<domain>` by `dueAt` (unfinished records, not parked),
 * `all` and `dom:<domain>` by `createdAt`, `exp` by `expiresAt` (tombstones). Tombstones
 * expire through `PEXPIREAT`; `list`/`count` drop their index entries lazily. Nothing ever
 * uses `SCAN` or `KEYS`. On a standalone client, the commands of one tick leave in one socket
 * write.
 *
 * Durability is Redis's: configure persistence (AOF), `maxmemory-policy noeviction`, and use
 * `replicas` with replication so that a failover cannot lose a write (see the README).
 *
 * Connection handling is ioredis's: configure its timeouts (`connectTimeout`,
 * `commandTimeout`, `maxRetriesPerRequest`, `enableOfflineQueue`), or a call may wait for a
 * reconnection for as long as ioredis retries. Failures reject with `StorageError` naming the
 * operation and the address, the ioredis error as `cause`.
 *
 * `close()` does not quit the clients: the caller created them and owns them.
 */
export class RedisStorage implements TransactionStorage {
  readonly prefix: string;
  readonly buckets: number;
  readonly replicas: number;
  readonly replicaTimeoutMs: number;
  readonly #keys: KeySpace;
  readonly #topology: Topology;
  readonly #marker: SchemaMarker;
  readonly #calls: NodeCalls;
  readonly #merge: KeysetMerge;
  readonly #onCorrupt: CorruptRecordHandler;
  #closed = false;

  /**
   * @throws {InvalidOptionError} naming the bad value, if the connection or an option is invalid.
   */
  constructor(options: RedisStorageOptions) {
    const where = 'new RedisStorage';
    const settings = resolveSettings(options, where);
    this.prefix = settings.prefix;
    this.buckets = settings.buckets;
    this.replicas = settings.replicas;
    this.replicaTimeoutMs = settings.replicaTimeoutMs;
    this.#onCorrupt = settings.onCorrupt;
    this.#keys = new KeySpace(settings.prefix, settings.buckets);
    this.#topology = new Topology(options, where);
    this.#marker = new SchemaMarker(this.#keys);
    this.#calls = new NodeCalls(this.#marker, settings.replicas, settings.replicaTimeoutMs);
    this.#merge = new KeysetMerge(this.#calls);
    for (const node of this.#topology.nodes) defineCommands(node.client);
  }

  /**
   * Writes the schema marker (`<prefix>meta`) where it is missing and checks it everywhere.
   * Every other method does this on first use; call it to fail early at startup.
   *
   * @throws {SchemaVersionError} if the key space was written by another schema version or
   *   with another number of buckets.
   */
  async migrate(): Promise<void> {
    this.#assertOpen();
    await Promise.all(this.#topology.nodes.map((node) => this.#marker.check(node)));
  }

  /** Where an xid's record lives: the shard id, the bucket and the key (without ioredis `keyPrefix`). */
  locate(xid: string): { shard: string; bucket: number; key: string } {
    const { node, bucket } = this.#route(xid);
    return { shard: node.id, bucket, key: this.#keys.recordKey(bucket, xid) };
  }

  async create(record: TransactionRecord): Promise<void> {
    this.#assertOpen();
    kit.checkRecord('create', record);
    const expiresAt = kit.checkCreate(record);
    const { xid } = record;
    const { node, bucket } = this.#route(xid);
    const args: (string | number)[] = this.#keys.writeKeys(bucket, xid);
    args.push(
      JSON.stringify(record),
      record.domain,
      record.createdAt,
      kit.isStuck(record) ? record.dueAt : '',
      expiresAt === undefined ? '' : expiresAt,
    );
    const result = await this.#calls.write('create', node, xid, COMMAND.create, args);
    if (result === 0) throw new DuplicateTransactionError(xid);
  }

  async update(record: TransactionRecord, expectedVersion: number): Promise<void> {
    this.#assertOpen();
    kit.checkRecord('update', record);
    kit.checkUpdate(record, expectedVersion);
    const { xid } = record;
    const { node, bucket } = this.#route(xid);
    const args = this.#casArgs(bucket, record, expectedVersion);
    args.push(kit.isStuck(record) ? record.dueAt : '');
    const result = await this.#calls.write('update', node, xid, COMMAND.update, args);
    checkCas(xid, expectedVersion, result);
  }

  async complete(record: TransactionRecord, expectedVersion: number): Promise<void> {
    this.#assertOpen();
    kit.checkRecord('complete', record);
    const expiresAt = kit.checkComplete(record, expectedVersion);
    const { xid } = record;
    const { node, bucket } = this.#route(xid);
    const args = this.#casArgs(bucket, record, expectedVersion);
    args.push(expiresAt);
    const result = await this.#calls.write('complete', node, xid, COMMAND.complete, args);
    checkCas(xid, expectedVersion, result);
  }

  async remove(xid: string, expectedVersion: number): Promise<void> {
    this.#assertOpen();
    kit.requireXid('remove', xid);
    const { node, bucket } = this.#route(xid);
    const args: (string | number)[] = this.#keys.writeKeys(bucket, xid);
    args.push(expectedVersion);
    const result = await this.#calls.write('remove', node, xid, COMMAND.remove, args);
    checkCas(xid, expectedVersion, result);
  }

  /**
   * @throws {CorruptRecordError} naming the key, if the stored record cannot be read back.
   */
  async get(xid: string): Promise<TransactionRecord | undefined> {
    this.#assertOpen();
    kit.requireXid('get', xid);
    const { node, bucket } = this.#route(xid);
    const record = await this.#read('get', node, bucket, xid);
    if (record === undefined || kit.isExpired(record, Date.now())) return undefined;
    return record;
  }

  async findStuck(query: FindStuckQuery): Promise<Page> {
    this.#assertOpen();
    const { limit, dueBefore, after } = kit.checkFindStuck(query);
    const { domain } = query;
    // The other stores find nothing for a domain that is not a string; here it would name a
    // key (`stuck:undefined`) that some other domain could own.
    if (typeof domain !== 'string') {
      throw new StorageError(`findStuck: domain must be a string, got ${describeValue(domain)}`);
    }
    await this.#marker.checkAll(this.#topology.nodes);
    const sources = this.#sources((bucket) => this.#keys.stuckKey(bucket, domain));
    const max = Number.isFinite(dueBefore) ? `(${dueBefore}` : dueBefore > 0 ? '+inf' : '-inf';
    // limit + 1 per bucket: enough to fill this page and know whether another follows.
    const { entries } = await this.#merge.window('findStuck', sources, after, limit + 1, max);
    const { rows: chosen, cursor } = kit.cutPage('findStuck', entries, limit, keyOfEntry);
    const loaded = await this.#load('findStuck', chosen);
    const records: TransactionRecord[] = [];
    for (let i = 0; i < chosen.length; i++) {
      const record = loaded[i];
      const entry = chosen[i]!;
      // Changed since the index was read: it is (or is no longer) in the index elsewhere.
      if (record === undefined || record.dueAt !== entry.score || record.domain !== domain) continue;
      if (!kit.isStuck(record) || record.dueAt >= dueBefore) continue;
      records.push(record);
    }
    return kit.toPage(records, cursor);
  }

  async list(query: ListQuery): Promise<Page> {
    this.#assertOpen();
    const { limit, after } = kit.checkList(query);
    await this.#marker.checkAll(this.#topology.nodes);
    await this.#sweep();
    const matched: { record: TransactionRecord; entry: IndexEntry }[] = [];
    await this.#scanRecords('list', query, after, limit + 1, (record, entry) => {
      matched.push({ record, entry });
      return matched.length <= limit;
    });
    const { rows, cursor } = kit.cutPage('list', matched, limit, (m) => keyOfEntry(m.entry));
    return kit.toPage(
      rows.map((m) => m.record),
      cursor,
    );
  }

  async count(query: Omit<ListQuery, 'limit' | 'cursor'>): Promise<number> {
    this.#assertOpen();
    await this.#marker.checkAll(this.#topology.nodes);
    await this.#sweep();
    const { domain, status, type, parked } = query;
    if (status === undefined && type === undefined && parked === undefined) {
      const sources = this.#sources((bucket) => this.#keys.createdKey(bucket, domain));
      const sizes = await Promise.all(
        sources.map((s) => this.#calls.call('count', s.node, undefined, () => s.node.client.zcard(s.key))),
      );
      return sizes.reduce((a, b) => a + b, 0);
    }
    let n = 0;
    await this.#scanRecords('count', query, undefined, COUNT_CHUNK, () => {
      n++;
      return true;
    });
    return n;
  }

  /**
   * Marks the store closed: every other method rejects afterwards; closing again does nothing.
   * The ioredis clients are **not** quit: the caller created them and owns them.
   */
  async close(): Promise<void> {
    this.#closed = true;
  }

  #assertOpen(): void {
    if (this.#closed) throw new StorageError('redis storage is closed');
  }

  /** KEYS and the leading ARGV that `update` and `complete` share (see their script headers). */
  #casArgs(bucket: number, record: TransactionRecord, expectedVersion: number): (string | number)[] {
    const args: (string | number)[] = this.#keys.writeKeys(bucket, record.xid);
    args.push(expectedVersion, record.version, JSON.stringify(record), record.domain, record.createdAt);
    return args;
  }

  #route(xid: string): { node: RedisNode; bucket: number } {
    return { node: this.#topology.nodeOf(xid), bucket: this.#keys.bucketOf(xid) };
  }

  /** One index per bucket of every node, its key made by `keyOf`. */
  #sources(keyOf: (bucket: number) => string): IndexSource[] {
    const sources: IndexSource[] = [];
    for (const node of this.#topology.nodes) {
      for (let bucket = 0; bucket < this.buckets; bucket++) {
        sources.push({ node, bucket, key: keyOf(bucket) });
      }
    }
    return sources;
  }

  /** Drops expired tombstones from every bucket's indexes. */
  async #sweep(): Promise<void> {
    const sources = this.#sources((bucket) => this.#keys.bucketPrefix(bucket));
    await Promise.all(
      sources.map(async ({ node, bucket }) => {
        for (;;) {
          const dropped = await this.#calls.script('sweep', node, COMMAND.sweep, [
            ...this.#keys.sweepKeys(bucket),
            SWEEP_BATCH,
          ]);
          if (Number(dropped) < SWEEP_BATCH) return;
        }
      }),
    );
  }

  /**
   * Walks the `(createdAt, xid)` index of `query`'s domain (or all records) after `after`,
   * handing every live record that matches the filter to `take` until it returns false.
   */
  async #scanRecords(
    operation: string,
    query: Omit<ListQuery, 'limit' | 'cursor'>,
    after: PageKey | undefined,
    chunk: number,
    take: (record: TransactionRecord, entry: IndexEntry) => boolean,
  ): Promise<void> {
    const { domain, status, type, parked } = query;
    const sources = this.#sources((bucket) => this.#keys.createdKey(bucket, domain));
    const now = Date.now();
    let position = after;
    for (;;) {
      const { entries, done } = await this.#merge.window(operation, sources, position, chunk, '+inf');
      const loaded = await this.#load(operation, entries);
      for (let i = 0; i < entries.length; i++) {
        const record = loaded[i];
        if (record === undefined || kit.isExpired(record, now)) continue;
        if (domain !== undefined && record.domain !== domain) continue;
        if (status !== undefined && record.status !== status) continue;
        if (type !== undefined && record.type !== type) continue;
        if (parked !== undefined && (record.parkedAt !== undefined) !== parked) continue;
        if (!take(record, entries[i]!)) return;
      }
      const last = entries[entries.length - 1];
      if (done || last === undefined) return;
      position = keyOfEntry(last);
    }
  }

  /** The records of `entries` (undefined where gone or corrupt; corrupt ones are reported). */
  #load(operation: string, entries: readonly IndexEntry[]): Promise<(TransactionRecord | undefined)[]> {
    return Promise.all(
      entries.map(({ node, bucket, xid }) =>
        this.#read(operation, node, bucket, xid).catch((error: unknown) =>
          kit.skipCorrupt(error, this.#onCorrupt),
        ),
      ),
    );
  }

  /**
   * The record of `xid`, `undefined` if there is none.
   *
   * @throws {CorruptRecordError} naming the key, if what is stored there cannot be read back.
   */
  async #read(
    operation: string,
    node: RedisNode,
    bucket: number,
    xid: string,
  ): Promise<TransactionRecord | undefined> {
    const key = this.#keys.recordKey(bucket, xid);
    const [version, json] = await this.#calls.call(
      operation,
      node,
      xid,
      () => node.client.hmget(key, 'v', 'r'),
      key,
    );
    if ((version ?? null) === null && (json ?? null) === null) return undefined;
    return kit.decodeStoredRecord(`${node.keyPrefix}${key}`, xid, json, { noun: 'field', version });
  }
}

function keyOfEntry(entry: IndexEntry): PageKey {
  return [entry.score, entry.xid];
}

function checkCas(xid: string, expectedVersion: number, result: unknown): void {
  if (result === 0) return;
  const actual = Number(result);
  throw new OptimisticLockError(xid, expectedVersion, actual === -1 ? undefined : actual);
}
