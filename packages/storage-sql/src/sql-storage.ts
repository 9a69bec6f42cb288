import * as kit from '@tcc/core/storage';
import {
  type CorruptRecordError,
  type CorruptRecordHandler,
  DuplicateTransactionError,
  describeValue,
  type FindStuckQuery,
  InvalidOptionError,
  type ListQuery,
  OptimisticLockError,
  type Page,
  type PageKey,
  StorageError,
  TccError,
  TERMINAL_STATUSES,
  type TransactionRecord,
  type TransactionStorage,
} from '@tcc/core/storage';
import { type SqlClient, type SqlClientInput, type SqlRow, sqlState, toSqlClient } from './client.js';
import { checkSchemaVersion, type MigrationResult, runMigrations } from './migrations.js';
import { resolveNames, type SqlNames } from './names.js';
import { batchStatement, type WriteKind } from './pg/batch-statement.js';
import { WriteBatch } from './pg/write-batch.js';
import { type DirectoryLock, lockDirectory } from './pglite/directory-lock.js';
import { localDirectory, lockOwnerOf, openPGlite } from './pglite/open-pglite.js';

/** Options of {@link SqlStorage}. */
export interface SqlStorageOptions {
  /**
   * A `pg.Pool`, a connected `pg.Client` or a PGlite instance. The caller owns it:
   * `SqlStorage#close()` does not end it. A PGlite kept in a directory is locked for this
   * process at the store's first call (see `dataDir`); open it with `openPGlite(dir)`, which
   * locks before opening, rather than `PGlite.create(dir)`. Give `client` or `dataDir`.
   */
  client?: SqlClientInput;
  /**
   * A directory for an embedded PostgreSQL (PGlite) that the store opens itself at its first
   * call, after taking an exclusive lock on the directory (`openPGlite`): while another live
   * process holds it, every call rejects with `StoreLockedError` (`TCC_STORE_LOCKED`) and
   * nothing is opened. `close()` closes the database and releases the lock.
   */
  dataDir?: string;
  /** Schema of the tables (default `public`); created by `migrate()` if missing. */
  schema?: string;
  /** Table of the log (default `tcc_transactions`); also names `<table>_migrations` and `<table>_barrier`. */
  table?: string;
  /**
   * Told about every stored record that cannot be read back when `findStuck` or `list` skip
   * it. Default: `process.emitWarning(error)`.
   */
  onCorrupt?: (error: CorruptRecordError) => void;
  /** Source of "now" for tombstone expiry (ms since the epoch). Default `Date`. */
  clock?: { now(): number };
  /**
   * PGlite only (PostgreSQL runs autovacuum itself): `VACUUM` the log table after this many
   * writes. An embedded engine has no autovacuum worker, and without it every finished
   * transaction leaves its dead rows on disk for good (about 1 KB each). Default 2,000 (a
   * few milliseconds each time); 0 never vacuums.
   */
  vacuumEvery?: number;
}

const DEFAULT_VACUUM_EVERY = 2_000;
/** Unfinished and not parked: the predicate of the stuck index (migration 2), word for word. */
const STUCK_SQL = `status IN ('TRYING', 'TRIED', 'TRY_FAILED', 'CONFIRMING', 'CANCELLING') AND parked_at IS NULL`;
const LIVE_SQL = (now: string) => `(expires_at IS NULL OR expires_at > ${now})`;
const COLUMNS =
  'xid, global_id, domain, type, status, version, retries, created_at, updated_at, deadline, due_at, parked_at, expires_at, record';

/**
 * The transaction log in PostgreSQL (through `pg`) or in PGlite (embedded, in a local
 * directory), one SQL dialect for both (see the package README for the table and indexes).
 *
 * Call `await storage.migrate()` once before use: every other method refuses a database
 * whose schema version is missing, older or newer than `TCC_SCHEMA_VERSION`. Every write is
 * a compare-and-set on `version`. On `pg`, the writes issued during one turn of the event
 * loop are one statement (one round trip, one commit), each write with its own outcome; a
 * lone write is its own statement. An embedded directory is locked for one process at a time
 * (`StoreLockedError` for the next). On PGlite, statements issued while another is running are
 * sent together in one trip into the engine (each still its own statement, with its own
 * outcome). Failures to reach the database are
 * `StorageError`s (code `TCC_STORAGE`) naming the operation, the driver's error as `cause`.
 */
export class SqlStorage implements TransactionStorage {
  readonly names: SqlNames;
  /**
   * `true` on PGlite: one process holds the database and runs one statement at a time, so a
   * read returns the last write it acknowledged (see `TransactionStorage.linearizable`).
   * `false` on a server, whose standby may be promoted without the last commits.
   */
  readonly linearizable: boolean;
  private client: SqlClient | undefined;
  /** Where the store opens its own PGlite (`dataDir`), and the open database once it has. */
  private readonly dataDir: string | undefined;
  private opening: Promise<SqlClient> | undefined;
  private owned: { close(): Promise<void> } | undefined;
  /** This store's share of the lock on the directory of a PGlite given as `client`. */
  private lock: Promise<DirectoryLock> | undefined;
  private readonly given: object | undefined;
  private readonly clock: { now(): number };
  private readonly onCorrupt: CorruptRecordHandler;
  private readonly sql: ReturnType<typeof statements>;
  private readonly vacuumEvery: number;
  /** On a server (pg), the writes of one turn in one statement; PGlite batches trips itself. */
  private readonly writes: WriteBatch | undefined;
  private schemaChecked = false;
  private closed = false;
  private writesSinceVacuum = 0;

  constructor(options: SqlStorageOptions) {
    if (options === null || typeof options !== 'object') {
      throw new InvalidOptionError(`SqlStorage: options must be an object, got ${String(options)}`);
    }
    const { client, dataDir } = options;
    if (dataDir !== undefined) {
      if (client !== undefined) {
        throw new InvalidOptionError('SqlStorage: give either client or dataDir, not both');
      }
      if (typeof dataDir !== 'string' || dataDir === '') {
        throw new InvalidOptionError(
          `SqlStorage: dataDir must be a directory path, got ${describeValue(dataDir)}`,
        );
      }
      this.dataDir = dataDir;
    } else {
      if (client === undefined) {
        throw new InvalidOptionError(
          'SqlStorage: give client (a pg.Pool, a pg.Client or a PGlite instance) or dataDir (a directory ' +
            'for an embedded PGlite the store opens itself)',
        );
      }
      this.client = toSqlClient(client, 'SqlStorage');
      this.given = client as object;
    }
    this.names = resolveNames(options, 'SqlStorage');
    this.onCorrupt = kit.corruptRecordHandler(options.onCorrupt, 'SqlStorage');
    if (options.clock !== undefined && typeof options.clock?.now !== 'function') {
      throw new InvalidOptionError('SqlStorage: clock must have a now() method');
    }
    const { vacuumEvery = DEFAULT_VACUUM_EVERY } = options;
    if (typeof vacuumEvery !== 'number' || !Number.isSafeInteger(vacuumEvery) || vacuumEvery < 0) {
      throw new InvalidOptionError(
        `SqlStorage: vacuumEvery must be a non-negative integer, got ${describeValue(vacuumEvery)}`,
      );
    }
    const embedded = this.client === undefined || this.client.kind === 'pglite';
    this.linearizable = embedded;
    this.vacuumEvery = embedded ? vacuumEvery : 0;
    this.clock = options.clock ?? Date;
    this.sql = statements(this.names);
    this.writes = embedded ? undefined : this.batch();
  }

  /**
   * Creates or upgrades the tables to `TCC_SCHEMA_VERSION`. Idempotent (a second call applies
   * nothing) and safe when several processes migrate at once (an advisory lock serialises them).
   * Refuses a database migrated by a newer release.
   */
  async migrate(): Promise<MigrationResult> {
    this.assertOpen('migrate');
    try {
      const result = await runMigrations(await this.connect(), this.names);
      this.schemaChecked = true;
      return result;
    } catch (error) {
      throw this.wrap('migrate', error);
    }
  }

  async create(record: TransactionRecord): Promise<void> {
    await this.ready('create');
    kit.checkRecord('create', record);
    kit.checkCreate(record);
    const created = await this.execute('create', 'create', [...rowValues(record), this.clock.now()]);
    if (created === 0) throw new DuplicateTransactionError(record.xid);
    this.written();
  }

  async update(record: TransactionRecord, expectedVersion: number): Promise<void> {
    await this.ready('update');
    kit.checkRecord('update', record);
    kit.checkUpdate(record, expectedVersion);
    await this.replace('update', record, expectedVersion);
  }

  async complete(record: TransactionRecord, expectedVersion: number): Promise<void> {
    await this.ready('complete');
    kit.checkRecord('complete', record);
    const expiresAt = kit.checkComplete(record, expectedVersion);
    const now = this.clock.now();
    if (expiresAt <= now) await this.delete('complete', record.xid, expectedVersion, now);
    else await this.replace('complete', record, expectedVersion);
  }

  async remove(xid: string, expectedVersion: number): Promise<void> {
    await this.ready('remove');
    await this.delete('remove', xid, expectedVersion, this.clock.now());
  }

  /** The record, or `undefined`; a stored record that cannot be read is a `CorruptRecordError`. */
  async get(xid: string): Promise<TransactionRecord | undefined> {
    await this.ready('get');
    const [row] = await this.exec('get', 'get', [xid, this.clock.now()]);
    return row === undefined ? undefined : decode(xid, row);
  }

  async findStuck(query: FindStuckQuery): Promise<Page> {
    await this.ready('findStuck');
    const { limit, dueBefore, after } = kit.checkFindStuck(query);
    const params: unknown[] = [query.domain, columnBound(dueBefore), limit + 1];
    let statement: Statement = 'findStuck';
    if (after !== undefined) {
      params.push(...after);
      statement = 'findStuckAfter';
    }
    const rows = await this.exec('findStuck', statement, params);
    return this.page('findStuck', rows, limit);
  }

  async list(query: ListQuery): Promise<Page> {
    await this.ready('list');
    const { limit, after } = kit.checkList(query);
    const params: unknown[] = [this.clock.now()];
    const where = filter(query, params);
    if (after !== undefined) {
      params.push(...after);
      where.push(`(created_at, xid) > ($${params.length - 1}, $${params.length})`);
    }
    params.push(limit + 1);
    const rows = await this.run(
      'list',
      `SELECT xid, created_at AS k, version, status, record FROM ${this.names.records} WHERE ${where.join(' AND ')}
       ORDER BY created_at, xid LIMIT $${params.length}`,
      params,
    );
    return this.page('list', rows, limit);
  }

  async count(query: Omit<ListQuery, 'limit' | 'cursor'>): Promise<number> {
    await this.ready('count');
    const params: unknown[] = [this.clock.now()];
    const where = filter(query, params);
    const [row] = await this.run(
      'count',
      `SELECT count(*)::integer AS n FROM ${this.names.records} WHERE ${where.join(' AND ')}`,
      params,
    );
    return Number(row?.n ?? 0);
  }

  /**
   * Deletes tombstones whose `expiresAt` has passed, up to `limit` per statement until none
   * is left, and returns how many. Reads never return them anyway, and `create` reuses an
   * expired xid in place; this only reclaims space, at a moment of your choosing.
   */
  async purgeExpired(limit = 1_000): Promise<number> {
    await this.ready('purgeExpired');
    kit.requireLimit('purgeExpired', limit);
    let total = 0;
    for (;;) {
      const deleted = await this.execute('purgeExpired', 'purge', [this.clock.now(), limit]);
      total += deleted;
      if (deleted < limit) return total;
    }
  }

  /**
   * Marks the store closed: every other method rejects afterwards; calling it again does
   * nothing. It does **not** end the pg Pool, pg Client or PGlite given as `client`: the
   * caller created it and ends it (`pool.end()`, `client.end()`, `db.close()`).
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const lock = this.lock;
    const opening = this.opening;
    try {
      if (
        opening !== undefined &&
        (await opening.then(
          () => true,
          () => false,
        ))
      )
        await this.owned?.close();
    } finally {
      await lock?.then(
        (held) => held.release(),
        () => {},
      );
    }
  }

  private async replace(
    operation: string,
    record: TransactionRecord,
    expectedVersion: number,
  ): Promise<void> {
    const now = this.clock.now();
    const changed = await this.execute(operation, 'update', [...rowValues(record), expectedVersion, now]);
    if (changed === 0) await this.lostRace(operation, record.xid, expectedVersion, now);
    this.written();
  }

  private async delete(operation: string, xid: string, expectedVersion: number, now: number): Promise<void> {
    const changed = await this.execute(operation, 'remove', [xid, expectedVersion, now]);
    if (changed === 0) await this.lostRace(operation, xid, expectedVersion, now);
    this.written();
  }

  /**
   * Counts a write; on PGlite every `vacuumEvery` writes the table is vacuumed in the
   * background (it queues behind the statements already sent, like any other). A failure is
   * only a warning: the next round tries again.
   */
  private written(): void {
    if (this.vacuumEvery === 0 || ++this.writesSinceVacuum < this.vacuumEvery) return;
    this.writesSinceVacuum = 0;
    this.client?.query(`VACUUM ${this.names.records}`).catch((error: unknown) => {
      if (!this.closed) process.emitWarning(this.wrap('vacuum', error));
    });
  }

  /** After a CAS matched no row: reads the version that is there, for the error. */
  private async lostRace(operation: string, xid: string, expected: number, now: number): Promise<never> {
    const [row] = await this.exec(operation, 'version', [xid, now]);
    throw new OptimisticLockError(xid, expected, row === undefined ? undefined : Number(row.version));
  }

  private page(operation: string, rows: SqlRow[], limit: number): Page {
    const { rows: taken, cursor } = kit.cutPage(operation, rows, limit, keyOf);
    const records: TransactionRecord[] = [];
    for (const row of taken) {
      try {
        records.push(decode(String(row.xid), row));
      } catch (error) {
        kit.skipCorrupt(error, this.onCorrupt);
      }
    }
    return kit.toPage(records, cursor);
  }

  private assertOpen(operation: string): void {
    if (this.closed) throw new StorageError(`SqlStorage.${operation}: the store is closed`);
  }

  /** Open, and the schema version checked once (a failed check is repeated next time). */
  private async ready(operation: string): Promise<void> {
    this.assertOpen(operation);
    if (this.schemaChecked) return;
    try {
      await checkSchemaVersion(await this.connect(), this.names);
    } catch (error) {
      throw this.wrap(operation, error);
    }
    this.schemaChecked = true;
  }

  /**
   * The client, with the embedded database's directory locked for this process: the store's
   * own PGlite (`dataDir`) is opened behind the lock; a PGlite given as `client` has its
   * directory locked before the store sends it anything. A refusal (`StoreLockedError`) is
   * not kept: the next call asks again.
   */
  private async connect(): Promise<SqlClient> {
    if (this.dataDir !== undefined) {
      this.opening ??= this.openOwn(this.dataDir);
      const opening = this.opening;
      try {
        return await opening;
      } catch (error) {
        if (this.opening === opening) this.opening = undefined;
        throw error;
      }
    }
    const client = this.client as SqlClient;
    const dir = client.kind === 'pglite' ? localDirectory(client.dataDir) : undefined;
    if (dir === undefined) return client;
    this.lock ??= lockDirectory(dir, lockOwnerOf(this.given as object));
    const lock = this.lock;
    try {
      await lock;
    } catch (error) {
      if (this.lock === lock) this.lock = undefined;
      throw error;
    }
    return client;
  }

  private async openOwn(dataDir: string): Promise<SqlClient> {
    const db = await openPGlite(dataDir);
    if (this.closed) {
      await db.close();
      throw new StorageError(`SqlStorage: the store was closed while ${dataDir} was being opened`);
    }
    this.owned = db;
    this.client = toSqlClient(db, 'SqlStorage');
    return this.client;
  }

  /** Runs SQL built per call (list, count). */
  private run(operation: string, text: string, params: readonly unknown[]): Promise<SqlRow[]> {
    return this.attempt(operation, (client) => client.query(text, params));
  }

  /** Runs one of the fixed writes; returns how many rows it changed. */
  private execute(operation: string, statement: Statement, params: readonly unknown[]): Promise<number> {
    const { writes } = this;
    if (writes !== undefined && isBatched(statement)) {
      return this.attempt(operation, () => writes.write({ kind: statement, params }));
    }
    return this.attempt(operation, (client) =>
      client.executeNamed(`tcc_${this.names.tag}_${statement}`, this.sql[statement], params),
    );
  }

  /** The batch of a server's writes, through the statements of this store's table. */
  private batch(): WriteBatch {
    const client = this.client as SqlClient;
    const name = (statement: string) => `tcc_${this.names.tag}_${statement}`;
    const text = batchStatement(this.names);
    return new WriteBatch({
      single: ({ kind, params }) => client.executeNamed(name(kind), this.sql[kind], params),
      batch: async (params) =>
        (await client.queryNamed(name('batch'), text, params)).map((r) => String(r.xid)),
    });
  }

  /** Runs one of the fixed statements, prepared once per connection on pg. */
  private exec(operation: string, statement: Statement, params: readonly unknown[]): Promise<SqlRow[]> {
    return this.attempt(operation, (client) =>
      client.queryNamed(`tcc_${this.names.tag}_${statement}`, this.sql[statement], params),
    );
  }

  /** Runs `call` on the client, a driver failure turned into a `StorageError` naming `operation`. */
  private async attempt<T>(operation: string, call: (client: SqlClient) => Promise<T>): Promise<T> {
    try {
      return await call(this.client as SqlClient);
    } catch (error) {
      throw this.wrap(operation, error);
    }
  }

  private wrap(operation: string, error: unknown): Error {
    if (error instanceof TccError) return error;
    const message = error instanceof Error ? error.message : String(error);
    const state = sqlState(error);
    const hint =
      state === '42P01' || state === '3F000' ? ' (tables missing: call `await storage.migrate()`)' : '';
    return new StorageError(
      `SqlStorage.${operation} on ${this.names.records} failed: ${message}${state === undefined ? '' : ` [SQLSTATE ${state}]`}${hint}`,
      { cause: error },
    );
  }
}

type Statement = keyof ReturnType<typeof statements>;

function isBatched(statement: Statement): statement is WriteKind {
  return statement === 'create' || statement === 'update' || statement === 'remove';
}

/** The SQL of the store, built once per table. */
function statements(n: SqlNames) {
  const t = n.records;
  const updates = COLUMNS.split(', ')
    .slice(1)
    .map((c) => `${c} = EXCLUDED.${c}`)
    .join(', ');
  return {
    // A live row wins the conflict (0 rows: duplicate); an expired tombstone is replaced in place.
    create: `INSERT INTO ${t} AS r (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
      ON CONFLICT (xid) DO UPDATE SET ${updates}
      WHERE r.expires_at IS NOT NULL AND r.expires_at <= $15`,
    update: `UPDATE ${t} SET global_id = $2, domain = $3, type = $4, status = $5, version = $6, retries = $7,
      created_at = $8, updated_at = $9, deadline = $10, due_at = $11, parked_at = $12, expires_at = $13,
      record = $14
      WHERE xid = $1 AND version = $15 AND ${LIVE_SQL('$16')}`,
    remove: `DELETE FROM ${t} WHERE xid = $1 AND version = $2 AND ${LIVE_SQL('$3')}`,
    version: `SELECT version FROM ${t} WHERE xid = $1 AND ${LIVE_SQL('$2')}`,
    get: `SELECT version, status, record FROM ${t} WHERE xid = $1 AND ${LIVE_SQL('$2')}`,
    findStuck: `SELECT xid, due_at AS k, version, status, record FROM ${t}
      WHERE domain = $1 AND ${STUCK_SQL} AND due_at < $2
      ORDER BY due_at, xid LIMIT $3`,
    findStuckAfter: `SELECT xid, due_at AS k, version, status, record FROM ${t}
      WHERE domain = $1 AND ${STUCK_SQL} AND due_at < $2 AND (due_at, xid) > ($4, $5)
      ORDER BY due_at, xid LIMIT $3`,
    purge: `DELETE FROM ${t} WHERE xid IN (
        SELECT xid FROM ${t} WHERE expires_at IS NOT NULL AND expires_at <= $1 LIMIT $2
      )`,
  };
}

/** Column values of a record, in `COLUMNS` order. */
function rowValues(record: TransactionRecord): unknown[] {
  return [
    record.xid,
    record.globalId,
    record.domain,
    record.type,
    record.status,
    record.version,
    record.retries,
    record.createdAt,
    record.updatedAt,
    record.deadline,
    record.dueAt,
    record.parkedAt ?? null,
    // Only tombstones expire; an expiresAt on a live record is kept in the JSON only.
    TERMINAL_STATUSES.has(record.status) ? (record.expiresAt ?? null) : null,
    JSON.stringify(record),
  ];
}

function filter(query: Omit<ListQuery, 'limit' | 'cursor'>, params: unknown[]): string[] {
  const where = [LIVE_SQL('$1')];
  const add = (column: string, value: unknown) => {
    params.push(value);
    where.push(`${column} = $${params.length}`);
  };
  if (query.domain !== undefined) add('domain', query.domain);
  if (query.status !== undefined) add('status', query.status);
  if (query.type !== undefined) add('type', query.type);
  if (query.parked === true) where.push('parked_at IS NOT NULL');
  else if (query.parked === false) where.push('parked_at IS NULL');
  return where;
}

function keyOf(row: SqlRow): PageKey {
  return [Number(row.k), String(row.xid)];
}

/** The record of a row that holds the JSON and the `version` and `status` columns. */
function decode(xid: string, row: SqlRow): TransactionRecord {
  return kit.decodeStoredRecord(xid, xid, row.record, {
    noun: 'column',
    version: row.version,
    status: row.status,
  });
}

/**
 * A bound for `<` on the integer millisecond columns: rounded up, so that `due_at < bound`
 * keeps exactly the rows whose time is below the caller's (fractional) value, and clamped, so
 * that ±Infinity means "no bound" as it does in the other stores.
 */
function columnBound(value: number): number {
  return Math.min(Number.MAX_SAFE_INTEGER, Math.max(Number.MIN_SAFE_INTEGER, Math.ceil(value)));
}
