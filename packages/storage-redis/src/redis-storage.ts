import {
  CorruptRecordError,
  DuplicateTransactionError,
  decodeCursor,
  describeValue,
  encodeCursor,
  type FindStuckQuery,
  InvalidOptionError,
  type ListQuery,
  OptimisticLockError,
  type Page,
  type PageKey,
  ReplicationTimeoutError,
  requireExpiresAt,
  requireLimit,
  requireNextVersion,
  STUCK_STATUSES,
  StorageError,
  TccError,
  TERMINAL_STATUSES,
  type TransactionRecord,
  type TransactionStorage,
} from '@tcc/core/storage';
import type { Cluster, Redis } from 'ioredis';
import { SchemaVersionError } from './errors.js';
import { bucketOf, fnv1a, rendezvous } from './hashing.js';
import { decodeRecord } from './record-codec.js';
import { SCRIPTS } from './scripts.js';

/** An ioredis client `RedisStorage` can use: a `Redis` (standalone or Sentinel-managed) or a `Cluster`. */
export type RedisClient = Redis | Cluster;

/**
 * One shard of a client-side sharded store. `id` names the shard in the rendezvous hash: keep
 * it stable when the shard moves to another address, or its records are looked for elsewhere.
 */
export interface RedisShard {
  readonly id: string;
  readonly client: Redis;
}

/**
 * Where `RedisStorage` keeps its records:
 * - `{ client }`: one ioredis `Redis` (standalone, or Sentinel-managed through its `sentinels`
 *   option) or one `Cluster`;
 * - `{ clients }`: standalone clients for client-side sharding. Each xid belongs to one shard
 *   by rendezvous hashing of the xid; a bare client's shard id is its `host:port`.
 */
export type RedisStorageConnection =
  | { readonly client: RedisClient }
  | { readonly clients: ReadonlyArray<Redis | RedisShard> };

/** Settings of {@link RedisStorage}, next to its connection. */
export interface RedisStorageSettings {
  /**
   * Prefix of every key this store writes (default `tcc:`). Stores with different prefixes
   * share a server without seeing each other. Must not contain `{` or `}` (hash tags).
   */
  prefix?: string;
  /**
   * Replicas that must acknowledge every write before it resolves, through Redis `WAIT`
   * pipelined with the write (default 0: do not wait). With fewer acknowledgements within
   * `replicaTimeoutMs` the write rejects with `ReplicationTimeoutError`.
   */
  replicas?: number;
  /** How long `WAIT` waits for `replicas` acknowledgements, in ms (default 1000). */
  replicaTimeoutMs?: number;
  /**
   * Number of hash-tagged buckets the keys are spread over (default 16). Redis Cluster places
   * each bucket in one slot, so more buckets spread the indexes over more nodes; `findStuck`
   * and `list` read every bucket. Fixed for a key space: it is recorded in the schema marker
   * and a store opened with another value refuses to run.
   */
  buckets?: number;
  /**
   * Called for a stored record that cannot be read back, which `findStuck` and `list` skip
   * (`get` throws the error instead). Default: `process.emitWarning`.
   */
  onCorrupt?: (error: CorruptRecordError) => void;
}

/** What `new RedisStorage(...)` takes: the connection (`client` or `clients`) and settings. */
export type RedisStorageOptions = RedisStorageConnection & RedisStorageSettings;

/** Version of the key layout this package reads and writes. */
export const SCHEMA_VERSION = 1;

const DEFAULT_PREFIX = 'tcc:';
const DEFAULT_BUCKETS = 16;
const MAX_BUCKETS = 16_384;
const DEFAULT_REPLICA_TIMEOUT_MS = 1_000;
const DEFAULT_LIST_LIMIT = 100;
const SWEEP_BATCH = 1_000;
const COUNT_CHUNK = 500;

/** Names under which the scripts are defined on the clients (one namespace per package version). */
const COMMAND = {
  create: 'tccStorageCreateV1',
  update: 'tccStorageUpdateV1',
  complete: 'tccStorageCompleteV1',
  remove: 'tccStorageRemoveV1',
  sweep: 'tccStorageSweepV1',
  range: 'tccStorageRangeV1',
} as const;

type ScriptFn = (...args: (string | number)[]) => Promise<unknown>;

interface Node {
  readonly id: string;
  readonly client: RedisClient;
  readonly address: string;
  /** ioredis `keyPrefix` of the client, shown in the keys named by errors. */
  readonly keyPrefix: string;
  readonly seed: number;
  ready: Promise<void> | undefined;
  checked: boolean;
}

/** A position in a keyset order: `(score, xid)`. */
type Key = PageKey;

interface Entry {
  readonly node: Node;
  readonly bucket: number;
  readonly xid: string;
  readonly score: number;
}

interface Source {
  readonly node: Node;
  readonly bucket: number;
  readonly key: string;
}

/**
 * A {@link TransactionStorage} in Redis, through ioredis: standalone, Sentinel-managed,
 * Cluster, or client-side shards.
 *
 * Every write is one Lua script (one round trip, `EVALSHA`) that does the compare-and-set on
 * `version` and the index maintenance together. Records live in hashes
 * `<prefix>{b<n>}:tx:<xid>` (fields `v` version, `d` domain, `c` createdAt, `r` the record
 * as JSON, `t` on tombstones); `n = fnv1a(xid) % buckets`. Per bucket, sorted sets index the
 * records: `stuck:<domain>` by `dueAt` (unfinished records, not parked),
 * `all` and `dom:<domain>` by `createdAt`, `exp` by `expiresAt` (tombstones). Tombstones
 * expire through `PEXPIREAT`; `list`/`count` drop their index entries lazily. Nothing ever
 * uses `SCAN` or `KEYS`.
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
  readonly #nodes: readonly Node[];
  readonly #seeds: readonly number[];
  readonly #onCorrupt: (error: CorruptRecordError) => void;
  readonly #meta: string;
  /** Bucket key prefixes, `<prefix>{b<n>}:`, computed once. */
  readonly #bucketPrefixes: readonly string[];
  #closed = false;

  /**
   * @throws {InvalidOptionError} naming the bad value, if the connection or an option is invalid.
   */
  constructor(options: RedisStorageOptions) {
    const where = 'new RedisStorage';
    if (options === null || typeof options !== 'object') {
      throw new InvalidOptionError(
        `${where}: expected { client } or { clients }, got ${describeValue(options)}`,
      );
    }
    const connection: RedisStorageConnection = options;
    const { prefix = DEFAULT_PREFIX, buckets = DEFAULT_BUCKETS } = options;
    const { replicas = 0, replicaTimeoutMs = DEFAULT_REPLICA_TIMEOUT_MS, onCorrupt } = options;
    if (typeof prefix !== 'string' || /[{}]/.test(prefix)) {
      throw new InvalidOptionError(
        `${where}: prefix must be a string without "{" or "}" (hash tags are the store's), got ${describeValue(prefix)}`,
      );
    }
    if (typeof buckets !== 'number' || !Number.isInteger(buckets) || buckets < 1 || buckets > MAX_BUCKETS) {
      throw new InvalidOptionError(
        `${where}: buckets must be an integer from 1 to ${MAX_BUCKETS}, got ${describeValue(buckets)}`,
      );
    }
    if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 0) {
      throw new InvalidOptionError(
        `${where}: replicas must be a non-negative integer, got ${describeValue(replicas)}`,
      );
    }
    if (typeof replicaTimeoutMs !== 'number' || !Number.isInteger(replicaTimeoutMs) || replicaTimeoutMs < 1) {
      throw new InvalidOptionError(
        `${where}: replicaTimeoutMs must be a positive integer, got ${describeValue(replicaTimeoutMs)}`,
      );
    }
    if (onCorrupt !== undefined && typeof onCorrupt !== 'function') {
      throw new InvalidOptionError(`${where}: onCorrupt must be a function, got ${describeValue(onCorrupt)}`);
    }
    this.prefix = prefix;
    this.buckets = buckets;
    this.replicas = replicas;
    this.replicaTimeoutMs = replicaTimeoutMs;
    this.#onCorrupt = onCorrupt ?? defaultOnCorrupt;
    this.#meta = `${prefix}meta`;
    this.#bucketPrefixes = Array.from({ length: buckets }, (_, n) => `${prefix}{b${n}}:`);
    this.#nodes = resolveNodes(connection, where);
    this.#seeds = this.#nodes.map((n) => n.seed);
    for (const node of this.#nodes) defineCommands(node.client);
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
    await Promise.all(this.#nodes.map((node) => this.#ready(node)));
  }

  /** Where an xid's record lives: the shard id, the bucket and the key (without ioredis `keyPrefix`). */
  locate(xid: string): { shard: string; bucket: number; key: string } {
    const { node, bucket } = this.#route(xid);
    return { shard: node.id, bucket, key: `${this.#bucketPrefixes[bucket]!}tx:${xid}` };
  }

  async create(record: TransactionRecord): Promise<void> {
    this.#assertOpen();
    checkRecord('create', record);
    if (record.version !== 1) {
      throw new StorageError(`create of transaction ${record.xid}: version must be 1, got ${record.version}`);
    }
    const terminal = TERMINAL_STATUSES.has(record.status);
    const expiresAt = terminal ? requireExpiresAt('create', record) : undefined;
    const { xid } = record;
    const { node, bucket } = this.#route(xid);
    const bp = this.#bucketPrefixes[bucket]!;
    const result = await this.#write('create', node, xid, COMMAND.create, [
      ...recordKeys(bp, xid, record.domain),
      xid,
      JSON.stringify(record),
      record.domain,
      record.createdAt,
      record.dueAt,
      isStuck(record) ? '1' : '0',
      expiresAt === undefined ? '' : expiresAt,
    ]);
    if (result === 0) throw new DuplicateTransactionError(xid);
  }

  async update(record: TransactionRecord, expectedVersion: number): Promise<void> {
    this.#assertOpen();
    checkRecord('update', record);
    requireNextVersion('update', record, expectedVersion);
    if (TERMINAL_STATUSES.has(record.status)) {
      throw new StorageError(
        `update of transaction ${record.xid}: status ${record.status} is terminal, write it with complete()`,
      );
    }
    const { xid } = record;
    const { node, bucket } = this.#route(xid);
    const bp = this.#bucketPrefixes[bucket]!;
    const args = [
      ...recordKeys(bp, xid, record.domain),
      xid,
      expectedVersion,
      record.version,
      JSON.stringify(record),
      record.domain,
      record.createdAt,
      record.dueAt,
      isStuck(record) ? '1' : '0',
    ];
    const result = await this.#write('update', node, xid, COMMAND.update, args);
    checkCas(xid, expectedVersion, result);
  }

  async complete(record: TransactionRecord, expectedVersion: number): Promise<void> {
    this.#assertOpen();
    checkRecord('complete', record);
    requireNextVersion('complete', record, expectedVersion);
    if (!TERMINAL_STATUSES.has(record.status)) {
      throw new StorageError(
        `complete of transaction ${record.xid}: status ${record.status} is not terminal (CONFIRMED or CANCELLED)`,
      );
    }
    const expiresAt = requireExpiresAt('complete', record);
    const { xid } = record;
    const { node, bucket } = this.#route(xid);
    const bp = this.#bucketPrefixes[bucket]!;
    const result = await this.#write('complete', node, xid, COMMAND.complete, [
      ...recordKeys(bp, xid, record.domain),
      xid,
      expectedVersion,
      record.version,
      JSON.stringify(record),
      record.domain,
      record.createdAt,
      expiresAt,
    ]);
    checkCas(xid, expectedVersion, result);
  }

  async remove(xid: string, expectedVersion: number): Promise<void> {
    this.#assertOpen();
    requireXid('remove', xid);
    const { node, bucket } = this.#route(xid);
    const bp = this.#bucketPrefixes[bucket]!;
    const result = await this.#write('remove', node, xid, COMMAND.remove, [
      `${bp}tx:${xid}`,
      `${bp}all`,
      `${bp}exp`,
      `${bp}expdom`,
      bp,
      xid,
      expectedVersion,
    ]);
    checkCas(xid, expectedVersion, result);
  }

  /**
   * @throws {CorruptRecordError} naming the key, if the stored record cannot be read back.
   */
  async get(xid: string): Promise<TransactionRecord | undefined> {
    this.#assertOpen();
    requireXid('get', xid);
    const { node, bucket } = this.#route(xid);
    const key = `${this.#bucketPrefixes[bucket]!}tx:${xid}`;
    const [version, json] = await this.#call('get', node, xid, () => node.client.hmget(key, 'v', 'r'), key);
    const record = this.#decode(node, key, xid, version ?? null, json ?? null);
    if (record === undefined || isExpired(record, Date.now())) return undefined;
    return record;
  }

  async findStuck(query: FindStuckQuery): Promise<Page> {
    this.#assertOpen();
    const limit = requireLimit('findStuck', query.limit);
    const { domain, dueBefore } = query;
    if (typeof domain !== 'string') {
      throw new StorageError(`findStuck: domain must be a string, got ${describeValue(domain)}`);
    }
    if (typeof dueBefore !== 'number' || Number.isNaN(dueBefore)) {
      throw new StorageError(`findStuck: dueBefore must be a number, got ${describeValue(dueBefore)}`);
    }
    const after = query.cursor === undefined ? undefined : decodeCursor('findStuck', query.cursor);
    await this.#readyAll();
    const sources = this.#sources((bp) => `${bp}stuck:${domain}`);
    const max = Number.isFinite(dueBefore) ? `(${dueBefore}` : dueBefore > 0 ? '+inf' : '-inf';
    // limit + 1 per bucket: enough to fill this page and know whether another follows.
    const { entries } = await this.#window('findStuck', sources, after, limit + 1, max);
    const chosen = entries.slice(0, limit);
    const loaded = await this.#load('findStuck', chosen);
    const records: TransactionRecord[] = [];
    for (let i = 0; i < chosen.length; i++) {
      const record = loaded[i];
      const entry = chosen[i]!;
      // Changed since the index was read: it is (or is no longer) in the index elsewhere.
      if (record === undefined || record.dueAt !== entry.score || record.domain !== domain) continue;
      if (!isStuck(record) || record.dueAt >= dueBefore) continue;
      records.push(record);
    }
    const last = chosen[chosen.length - 1];
    if (entries.length <= limit || last === undefined) return { records };
    return { records, cursor: encodeCursor('findStuck', [last.score, last.xid]) };
  }

  async list(query: ListQuery): Promise<Page> {
    this.#assertOpen();
    const limit = query.limit === undefined ? DEFAULT_LIST_LIMIT : requireLimit('list', query.limit);
    const after = query.cursor === undefined ? undefined : decodeCursor('list', query.cursor);
    await this.#readyAll();
    await this.#sweep();
    const matched: { record: TransactionRecord; entry: Entry }[] = [];
    await this.#scanRecords('list', query, after, limit + 1, (record, entry) => {
      matched.push({ record, entry });
      return matched.length <= limit;
    });
    const records = matched.slice(0, limit).map((m) => m.record);
    const last = matched[limit - 1];
    if (matched.length <= limit || last === undefined) return { records };
    return { records, cursor: encodeCursor('list', [last.entry.score, last.entry.xid]) };
  }

  async count(query: Omit<ListQuery, 'limit' | 'cursor'>): Promise<number> {
    this.#assertOpen();
    await this.#readyAll();
    await this.#sweep();
    const { domain, status, type, parked } = query;
    if (status === undefined && type === undefined && parked === undefined) {
      const sources = this.#sources((bp) => (domain === undefined ? `${bp}all` : `${bp}dom:${domain}`));
      const sizes = await Promise.all(
        sources.map((s) => this.#call('count', s.node, undefined, () => s.node.client.zcard(s.key))),
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

  #route(xid: string): { node: Node; bucket: number } {
    const node = this.#nodes[rendezvous(xid, this.#seeds)]!;
    return { node, bucket: bucketOf(xid, this.buckets) };
  }

  #sources(keyOf: (bucketPrefix: string) => string): Source[] {
    const sources: Source[] = [];
    for (const node of this.#nodes) {
      for (let bucket = 0; bucket < this.buckets; bucket++) {
        sources.push({ node, bucket, key: keyOf(this.#bucketPrefixes[bucket]!) });
      }
    }
    return sources;
  }

  /** Runs one write script (one `EVALSHA`), turning a driver failure into a `StorageError`. */
  async #script(operation: string, node: Node, xid: string, name: string, args: (string | number)[]) {
    if (!node.checked) await this.#ready(node);
    try {
      return await (node.client as unknown as Record<string, ScriptFn>)[name]!(...args);
    } catch (error) {
      throw this.#wrap(operation, node, xid, error);
    }
  }

  /** Runs one Redis call, turning a driver failure into a `StorageError` naming operation and address. */
  async #call<T>(
    operation: string,
    node: Node,
    xid: string | undefined,
    run: () => Promise<T>,
    key?: string,
  ): Promise<T> {
    if (!node.checked) await this.#ready(node);
    try {
      return await run();
    } catch (error) {
      throw this.#wrap(operation, node, xid, error, key);
    }
  }

  #wrap(operation: string, node: Node, xid: string | undefined, error: unknown, key?: string): Error {
    if (error instanceof TccError) return error;
    const message = error instanceof Error ? error.message : String(error);
    if (key !== undefined && message.startsWith('WRONGTYPE')) {
      return new CorruptRecordError(`${node.keyPrefix}${key}`, `not a hash (${message})`, { cause: error });
    }
    const what = xid === undefined ? operation : `${operation} of transaction ${xid}`;
    return new StorageError(`redis ${what} on ${node.address} failed: ${message}`, { cause: error });
  }

  /** The script and `WAIT replicas timeout` in one pipeline, so both reach the key's node. */
  /**
   * One write script; with `replicas`, pipelined with `WAIT` so that it resolves only once
   * enough replicas have it. Every write needs that, not only the commit point: a lost create
   * or enlisting update would leave a try's effects with no record to cancel them, a lost
   * empty-rollback tombstone would let a hanging try through.
   */
  #write(operation: string, node: Node, xid: string, name: string, args: (string | number)[]) {
    return this.replicas > 0
      ? this.#writeAndWait(operation, node, xid, name, args)
      : this.#script(operation, node, xid, name, args);
  }

  async #writeAndWait(
    operation: string,
    node: Node,
    xid: string,
    name: string,
    args: (string | number)[],
  ): Promise<unknown> {
    const started = performance.now();
    const replies = await this.#call(operation, node, xid, () =>
      node.client
        .pipeline([
          [name, ...args],
          ['wait', this.replicas, this.replicaTimeoutMs],
        ])
        .exec(),
    );
    const [[writeError, result] = [null, undefined], [waitError, acked] = [null, undefined]] = replies ?? [];
    if (writeError) throw this.#wrap(operation, node, xid, writeError);
    // Nothing was written to wait for: a lost compare-and-set, or a create of a stored xid.
    if (result !== (name === COMMAND.create ? 1 : 0)) return result;
    if (waitError) throw this.#wrap(`${operation} (WAIT)`, node, xid, waitError);
    const acknowledged = Number(acked);
    if (!(acknowledged >= this.replicas)) {
      const elapsed = Math.round(performance.now() - started);
      throw new ReplicationTimeoutError(xid, acknowledged, this.replicas, elapsed, `WAIT on ${node.address}`);
    }
    return result;
  }

  async #readyAll(): Promise<void> {
    for (const node of this.#nodes) if (!node.checked) await this.#ready(node);
  }

  #ready(node: Node): Promise<void> {
    if (node.checked) return Promise.resolve();
    node.ready ??= this.#checkMeta(node).then(
      () => {
        node.checked = true;
      },
      (error: unknown) => {
        node.ready = undefined; // a connection failure is retried by the next call
        throw error;
      },
    );
    return node.ready;
  }

  async #checkMeta(node: Node): Promise<void> {
    const key = this.#meta;
    const wanted = JSON.stringify({ schema: SCHEMA_VERSION, buckets: this.buckets });
    try {
      let stored = await node.client.get(key);
      if (stored === null) {
        await node.client.set(key, wanted, 'NX');
        stored = await node.client.get(key);
      }
      this.#checkMarker(node, stored ?? wanted);
    } catch (error) {
      throw this.#wrap('schema check', node, undefined, error);
    }
  }

  #checkMarker(node: Node, stored: string): void {
    const key = `${node.keyPrefix}${this.#meta}`;
    let marker: unknown;
    try {
      marker = JSON.parse(stored);
    } catch {
      // reported below
    }
    const schema = (marker as { schema?: unknown } | null)?.schema;
    const buckets = (marker as { buckets?: unknown } | null)?.buckets;
    if (typeof schema !== 'number' || typeof buckets !== 'number') {
      throw new SchemaVersionError(
        key,
        `${key} on ${node.address} is not a @tcc/storage-redis schema marker (${JSON.stringify(stored.slice(0, 100))}): ` +
          'refusing to use this key space; choose another prefix',
      );
    }
    if (schema !== SCHEMA_VERSION) {
      throw new SchemaVersionError(
        key,
        `${key} on ${node.address} says schema version ${schema}, but this @tcc/storage-redis reads and writes ` +
          `version ${SCHEMA_VERSION}: ${schema > SCHEMA_VERSION ? 'upgrade @tcc/storage-redis' : 'migrate the data'} ` +
          'before running it on this key space',
      );
    }
    if (buckets !== this.buckets) {
      throw new SchemaVersionError(
        key,
        `${key} on ${node.address} was written with buckets: ${buckets}, but this store was given buckets: ` +
          `${this.buckets}; records would be looked for in the wrong keys, so give it buckets: ${buckets}`,
      );
    }
  }

  /** Drops expired tombstones from every bucket's indexes. */
  async #sweep(): Promise<void> {
    const sources = this.#sources((bp) => bp);
    await Promise.all(
      sources.map(async ({ node, key: bp }) => {
        for (;;) {
          const dropped = await this.#call('sweep', node, undefined, () =>
            command(node.client, COMMAND.sweep)(`${bp}exp`, `${bp}expdom`, `${bp}all`, bp, SWEEP_BATCH),
          );
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
    after: Key | undefined,
    chunk: number,
    take: (record: TransactionRecord, entry: Entry) => boolean,
  ): Promise<void> {
    const { domain, status, type, parked } = query;
    const sources = this.#sources((bp) => (domain === undefined ? `${bp}all` : `${bp}dom:${domain}`));
    const now = Date.now();
    let position = after;
    for (;;) {
      const { entries, done } = await this.#window(operation, sources, position, chunk, '+inf');
      const loaded = await this.#load(operation, entries);
      for (let i = 0; i < entries.length; i++) {
        const record = loaded[i];
        if (record === undefined || isExpired(record, now)) continue;
        if (domain !== undefined && record.domain !== domain) continue;
        if (status !== undefined && record.status !== status) continue;
        if (type !== undefined && record.type !== type) continue;
        if (parked !== undefined && (record.parkedAt !== undefined) !== parked) continue;
        if (!take(record, entries[i]!)) return;
      }
      const last = entries[entries.length - 1];
      if (done || last === undefined) return;
      position = [last.score, last.xid];
    }
  }

  /**
   * One step of a keyset scan merged over many sorted sets: up to `n` entries after `after`
   * from each, merged in `(score, xid)` order and cut at the first place where a set that
   * returned `n` entries may hold more. `done` when no set has more.
   */
  async #window(
    operation: string,
    sources: readonly Source[],
    after: Key | undefined,
    n: number,
    max: string,
  ): Promise<{ entries: Entry[]; done: boolean }> {
    const parts = await Promise.all(sources.map((s) => this.#range(operation, s, after, n, max)));
    let frontier: Key | undefined;
    const merged: Entry[] = [];
    for (const part of parts) {
      merged.push(...part.entries);
      const last = part.entries[part.entries.length - 1];
      if (part.full && last !== undefined) {
        if (frontier === undefined || compareKey(last.score, last.xid, ...frontier) < 0) {
          frontier = [last.score, last.xid];
        }
      }
    }
    merged.sort(byKey);
    if (frontier === undefined) return { entries: merged, done: true };
    const [fs, fx] = frontier;
    return { entries: merged.filter((e) => compareKey(e.score, e.xid, fs, fx) <= 0), done: false };
  }

  /** Up to `n` entries of one sorted set strictly after `after` and below `max`. */
  async #range(
    operation: string,
    source: Source,
    after: Key | undefined,
    n: number,
    max: string,
  ): Promise<{ entries: Entry[]; full: boolean }> {
    const { node, bucket, key } = source;
    const reply = (await this.#call(operation, node, undefined, () =>
      command(node.client, COMMAND.range)(
        key,
        after === undefined ? '' : String(after[0]),
        after === undefined ? '' : after[1],
        max,
        n,
      ),
    )) as unknown[];
    const entries = toPairs(reply).map(([xid, score]) => ({ node, bucket, xid, score }));
    return { entries, full: entries.length >= n };
  }

  /** The records of `entries` (undefined where gone or corrupt; corrupt ones are reported). */
  async #load(operation: string, entries: readonly Entry[]): Promise<(TransactionRecord | undefined)[]> {
    return Promise.all(
      entries.map(async ({ node, bucket, xid }) => {
        const key = `${this.#bucketPrefixes[bucket]!}tx:${xid}`;
        try {
          const [version, json] = await this.#call(
            operation,
            node,
            xid,
            () => node.client.hmget(key, 'v', 'r'),
            key,
          );
          return this.#decode(node, key, xid, version ?? null, json ?? null);
        } catch (error) {
          if (!(error instanceof CorruptRecordError)) throw error;
          this.#report(error);
          return undefined;
        }
      }),
    );
  }

  #decode(
    node: Node,
    key: string,
    xid: string,
    version: string | null,
    json: string | null,
  ): TransactionRecord | undefined {
    if (version === null && json === null) return undefined;
    return decodeRecord(`${node.keyPrefix}${key}`, xid, version, json);
  }

  #report(error: CorruptRecordError): void {
    try {
      this.#onCorrupt(error);
    } catch {
      // A throwing reporter must not break the scan it reports from.
    }
  }
}

function defaultOnCorrupt(error: CorruptRecordError): void {
  process.emitWarning(error.message, { type: 'TccCorruptRecordWarning', code: error.code });
}

function defineCommands(client: RedisClient): void {
  const target = client as unknown as Record<string, unknown>;
  for (const [name, commandName] of Object.entries(COMMAND)) {
    if (typeof target[commandName] === 'function') continue;
    const definition = SCRIPTS.get(name);
    if (definition === undefined) throw new Error(`@tcc/storage-redis: script ${name} is missing`);
    client.defineCommand(commandName, { numberOfKeys: definition.numberOfKeys, lua: definition.lua });
  }
}

function command(client: RedisClient, name: string): ScriptFn {
  return (...args) => (client as unknown as Record<string, ScriptFn>)[name]!(...args);
}

function resolveNodes(connection: RedisStorageConnection, where: string): Node[] {
  if ('client' in connection) {
    const { client } = connection;
    if (!isClient(client)) {
      throw new InvalidOptionError(
        `${where}: client must be an ioredis Redis or Cluster, got ${describeValue(client)}`,
      );
    }
    return [makeNode(addressOf(client), client)];
  }
  if (!('clients' in connection) || !Array.isArray(connection.clients)) {
    throw new InvalidOptionError(
      `${where}: expected { client } or { clients: [...] }, got ${describeValue(connection)}`,
    );
  }
  const { clients } = connection;
  if (clients.length === 0) throw new InvalidOptionError(`${where}: clients must not be empty`);
  const nodes: Node[] = [];
  const ids = new Map<string, number>();
  clients.forEach((entry, i) => {
    const shard: RedisShard | undefined = isClient(entry)
      ? { id: addressOf(entry), client: entry as Redis }
      : entry !== null && typeof entry === 'object' && 'client' in entry && isClient(entry.client)
        ? entry
        : undefined;
    if (shard === undefined) {
      throw new InvalidOptionError(
        `${where}: clients[${i}] must be an ioredis Redis or { id, client }, got ${describeValue(entry)}`,
      );
    }
    if (shard.client.isCluster) {
      throw new InvalidOptionError(
        `${where}: clients[${i}] is a Cluster; pass a Cluster as { client } (it shards by itself)`,
      );
    }
    if (typeof shard.id !== 'string' || shard.id === '') {
      throw new InvalidOptionError(
        `${where}: clients[${i}].id must be a non-empty string, got ${describeValue(shard.id)}`,
      );
    }
    const seen = ids.get(shard.id);
    if (seen !== undefined) {
      throw new InvalidOptionError(
        `${where}: clients[${seen}] and clients[${i}] have the same shard id ${JSON.stringify(shard.id)}; ` +
          'give each shard its own { id, client }',
      );
    }
    ids.set(shard.id, i);
    nodes.push(makeNode(shard.id, shard.client, addressOf(shard.client)));
  });
  const seeds = new Set(nodes.map((n) => n.seed));
  if (seeds.size !== nodes.length) {
    throw new InvalidOptionError(
      `${where}: two shard ids hash alike; rename one of ${[...ids.keys()].join(', ')}`,
    );
  }
  return nodes;
}

function makeNode(id: string, client: RedisClient, address = id): Node {
  const keyPrefix = (client.options as { keyPrefix?: string }).keyPrefix ?? '';
  return { id, client, address, keyPrefix, seed: fnv1a(id), ready: undefined, checked: false };
}

function isClient(value: unknown): value is RedisClient {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof (value as { defineCommand?: unknown }).defineCommand === 'function' &&
    typeof (value as { isCluster?: unknown }).isCluster === 'boolean'
  );
}

/** A client's address for messages and default shard ids. */
function addressOf(client: RedisClient): string {
  if (client.isCluster) {
    const nodes = (client as unknown as { startupNodes?: unknown[] }).startupNodes ?? [];
    const list = nodes.map((n) =>
      typeof n === 'object' && n !== null
        ? `${(n as { host?: string }).host ?? 'localhost'}:${(n as { port?: number }).port ?? 6379}`
        : String(n),
    );
    return `cluster ${list.join(',')}`;
  }
  const options = (client as Redis).options;
  if (options.sentinels && options.sentinels.length > 0) {
    const sentinels = options.sentinels.map((s) => `${s.host ?? 'localhost'}:${s.port ?? 26379}`);
    return `sentinel master ${JSON.stringify(options.name ?? '')} via ${sentinels.join(',')}`;
  }
  if (options.path) return options.path;
  return `${options.host ?? 'localhost'}:${options.port ?? 6379}`;
}

/** The keys of every record write script, in its KEYS order: one bucket, one hash tag. */
function recordKeys(bp: string, xid: string, domain: string): string[] {
  return [
    `${bp}tx:${xid}`,
    `${bp}stuck:${domain}`,
    `${bp}all`,
    `${bp}dom:${domain}`,
    `${bp}exp`,
    `${bp}expdom`,
    bp,
  ];
}

function isStuck(record: TransactionRecord): boolean {
  return record.parkedAt === undefined && STUCK_STATUSES.has(record.status);
}

function isExpired(record: TransactionRecord, now: number): boolean {
  return record.expiresAt !== undefined && record.expiresAt <= now && TERMINAL_STATUSES.has(record.status);
}

function checkCas(xid: string, expectedVersion: number, result: unknown): void {
  if (result === 0) return;
  const actual = Number(result);
  throw new OptimisticLockError(xid, expectedVersion, actual === -1 ? undefined : actual);
}

function checkRecord(operation: string, record: TransactionRecord): void {
  if (record === null || typeof record !== 'object') {
    throw new StorageError(`${operation}: expected a transaction record, got ${describeValue(record)}`);
  }
  requireXid(operation, record.xid);
  if (typeof record.domain !== 'string') {
    throw new StorageError(`${operation} of transaction ${record.xid}: domain must be a string`);
  }
  for (const field of ['version', 'createdAt', 'updatedAt', 'dueAt'] as const) {
    if (typeof record[field] !== 'number' || !Number.isFinite(record[field])) {
      throw new StorageError(
        `${operation} of transaction ${record.xid}: ${field} must be a finite number, got ${describeValue(record[field])}`,
      );
    }
  }
}

function requireXid(operation: string, xid: unknown): void {
  if (typeof xid !== 'string' || xid === '') {
    throw new StorageError(`${operation}: xid must be a non-empty string, got ${describeValue(xid)}`);
  }
}

/** A `WITHSCORES` reply as `[member, score]` pairs: ioredis 6 nests them, older versions do not. */
function toPairs(reply: readonly unknown[]): [string, number][] {
  const pairs: [string, number][] = [];
  if (reply.length > 0 && Array.isArray(reply[0])) {
    for (const pair of reply as [unknown, unknown][]) pairs.push([String(pair[0]), Number(pair[1])]);
  } else {
    for (let i = 0; i + 1 < reply.length; i += 2) pairs.push([String(reply[i]), Number(reply[i + 1])]);
  }
  return pairs;
}

/** Orders `(score, xid)` pairs; xids compare by UTF-16 code units. */
function compareKey(score: number, xid: string, otherScore: number, otherXid: string): number {
  if (score !== otherScore) return score < otherScore ? -1 : 1;
  return xid < otherXid ? -1 : xid > otherXid ? 1 : 0;
}

const byKey = (a: Entry, b: Entry) => compareKey(a.score, a.xid, b.score, b.xid);
