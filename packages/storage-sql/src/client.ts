import { InvalidOptionError } from '@tcc/core/storage';
import { ConnectionLostError, RolledBackError } from './errors.js';
import { StatementQueue } from './pglite/statement-queue.js';

/** A row as the driver returns it. */
export type SqlRow = Record<string, unknown>;

/**
 * What `barrier`'s callback and the store run SQL through: one statement with `$n`
 * parameters, the result rows back.
 */
export interface SqlExecutor {
  query<R extends SqlRow = SqlRow>(text: string, params?: readonly unknown[]): Promise<R[]>;
}

/**
 * What a local transaction's statements run through inside the package: `query`, and
 * `queryNamed` for the barrier's own fixed statements, which pg then prepares once per
 * connection (PGlite ignores the name). `barrier`'s callback sees it as a `SqlExecutor`.
 */
export interface TransactionExecutor extends SqlExecutor {
  queryNamed<R extends SqlRow = SqlRow>(name: string, text: string, params: readonly unknown[]): Promise<R[]>;
}

/**
 * The one adapter over pg and PGlite: single statements, and a local transaction whose
 * statements all run on one connection (`BEGIN` … `COMMIT`, `ROLLBACK` when `fn` throws).
 */
export interface SqlClient extends SqlExecutor {
  readonly kind: 'pg-pool' | 'pg-client' | 'pglite';
  /** PGlite's data directory (`undefined` in memory, and on pg). */
  readonly dataDir?: string | undefined;
  /** Like `query`, with a statement name so pg prepares it once per connection. */
  queryNamed<R extends SqlRow = SqlRow>(name: string, text: string, params: readonly unknown[]): Promise<R[]>;
  /**
   * Runs a named INSERT/UPDATE/DELETE and returns how many rows it changed (no rows to parse
   * on pg). The text must end where a `RETURNING` clause could follow: PGlite's adapter adds
   * one to count the rows.
   */
  executeNamed(name: string, text: string, params: readonly unknown[]): Promise<number>;
  /**
   * One autocommitted statement with its rows and its row count as pg reports it (rows a write
   * changed, rows a SELECT returned): what `barrierQuery` hands back of the business statement.
   * With a `name`, pg prepares it once per connection (PGlite ignores the name).
   */
  queryResult<R extends SqlRow = SqlRow>(
    text: string,
    params: readonly unknown[],
    name?: string,
  ): Promise<{ rows: R[]; rowCount: number }>;
  transaction<T>(fn: (tx: TransactionExecutor) => Promise<T>): Promise<T>;
}

/** What pg answers: the rows, how many rows a write changed, and the command tag. */
interface PgResult {
  rows: SqlRow[];
  rowCount: number | null;
  /** `COMMIT` answers `ROLLBACK` when the transaction had failed: see `inTransaction`. */
  command?: string;
}

interface PgQueryConfig {
  text: string;
  values?: unknown[];
  name?: string;
}

/** A `pg.PoolClient`: what `pg.Pool#connect()` resolves to. */
export interface PgPoolClientLike {
  query(config: PgQueryConfig): Promise<PgResult>;
  /** Given an error, the pool discards the connection instead of handing it out again. */
  release(error?: Error | boolean): void;
  // A checked-out pg connection has no 'error' listener of the pool's: without one of ours, a
  // connection the server terminates (failover, idle-session kill) crashes the process.
  on?(event: 'error', listener: (error: Error) => void): unknown;
  removeListener?(event: 'error', listener: (error: Error) => void): unknown;
}

/** A `pg.Pool` (structurally: anything with `connect()`, `query()` and `totalCount`). */
export interface PgPoolLike {
  query(config: PgQueryConfig): Promise<PgResult>;
  connect(): Promise<PgPoolClientLike>;
  readonly totalCount: number;
}

/** A connected `pg.Client`. */
export interface PgClientLike {
  query(config: PgQueryConfig): Promise<PgResult>;
  connect(): Promise<unknown>;
  on?(event: 'error', listener: (error: Error) => void): unknown;
  removeListener?(event: 'error', listener: (error: Error) => void): unknown;
}

/** A PGlite instance (`new PGlite(dir)` or `await PGlite.create(dir)`). */
export interface PGliteLike {
  /** Where it keeps its data: a directory, `memory://…`, or `undefined` (in memory). */
  readonly dataDir?: string | undefined;
  query(
    text: string,
    params?: unknown[],
  ): Promise<{ rows: unknown[]; affectedRows?: number; rowCount?: number }>;
  transaction<T>(
    fn: (tx: { query(text: string, params?: unknown[]): Promise<{ rows: unknown[] }> }) => Promise<T>,
  ): Promise<T>;
  exec(text: string): Promise<ReadonlyArray<{ rows: unknown[] }>>;
}

/** What `SqlStorage` and `barrier` accept as `client`: a `pg.Pool`, a `pg.Client` or a PGlite. */
export type SqlClientInput = PgPoolLike | PgClientLike | PGliteLike;

// One adapter per client object, so a pg.Client shared by a store and barrier() also shares
// the lock that keeps a transaction's statements from interleaving with anybody else's.
const adapters = new WeakMap<object, SqlClient>();

/** Wraps a pg Pool, pg Client or PGlite in the {@link SqlClient} adapter (cached per object). */
export function toSqlClient(client: unknown, where: string): SqlClient {
  if (client === null || typeof client !== 'object') {
    throw new InvalidOptionError(
      `${where}: client must be a pg.Pool, a pg.Client or a PGlite instance, got ${describe(client)}`,
    );
  }
  const cached = adapters.get(client);
  if (cached !== undefined) return cached;
  const c = client as Record<string, unknown>;
  let adapter: SqlClient;
  if (typeof c.query === 'function' && typeof c.transaction === 'function' && typeof c.exec === 'function') {
    adapter = pgliteAdapter(client as PGliteLike);
  } else if (typeof c.query === 'function' && typeof c.connect === 'function' && 'totalCount' in c) {
    adapter = poolAdapter(client as PgPoolLike);
  } else if (typeof c.query === 'function' && typeof c.connect === 'function') {
    adapter = pgClientAdapter(client as PgClientLike);
  } else {
    throw new InvalidOptionError(
      `${where}: client must be a pg.Pool, a pg.Client or a PGlite instance, got ${describe(client)}`,
    );
  }
  adapters.set(client, adapter);
  return adapter;
}

function describe(value: unknown): string {
  if (value === null || typeof value !== 'object')
    return typeof value === 'string' ? JSON.stringify(value) : String(value);
  return `an object (${(value as object).constructor?.name ?? 'null prototype'})`;
}

function config(text: string, params: readonly unknown[] | undefined, name?: string): PgQueryConfig {
  const out: PgQueryConfig = { text };
  if (params !== undefined) out.values = params as unknown[];
  if (name !== undefined) out.name = name;
  return out;
}

async function inTransaction<T>(
  run: (text: string, params?: readonly unknown[], name?: string) => Promise<PgResult>,
  fn: (tx: TransactionExecutor) => Promise<T>,
): Promise<T> {
  await run('BEGIN');
  let result: T;
  try {
    result = await fn({
      query: (async (text, params) => (await run(text, params)).rows) as SqlExecutor['query'],
      queryNamed: (async (name, text, params) =>
        (await run(text, params, name)).rows) as TransactionExecutor['queryNamed'],
    });
  } catch (error) {
    try {
      await run('ROLLBACK');
    } catch {
      // The connection is likely gone; the original error says more.
    }
    throw error;
  }
  // PostgreSQL answers COMMIT of a failed transaction (a statement failed and `fn` caught the
  // error) with a silent ROLLBACK: without this check a fence row and a business change that
  // were never written would be reported as done.
  const { command } = await run('COMMIT');
  if (command === 'ROLLBACK') throw new RolledBackError();
  return result;
}

/**
 * `pool.query`, except that a statement the server refused leaves its connection in the pool.
 * pg-pool's own `query` discards the connection on any error, and the next statement then
 * waits for a new backend (a fork, authentication, cold caches): a CHECK that refuses a try,
 * or barrierQuery's empty rollback, which fails a statement on purpose, must not cost that.
 * A lost connection, an error that did not come from the server, or a named statement the
 * connection can no longer run (`spoilsPrepared`) still discards it.
 */
// A prepared statement the server no longer runs as pg thinks: its plan's result type changed
// (a table altered under it), or the server lost or already has the name. pg keeps the name as
// prepared on that connection, so every later use would fail the same way.
const SPOILED_PREPARED = new Set(['0A000', '26000', '42P05']);

/** `error` of the statement `name` means that connection can no longer run it. */
function spoilsPrepared(name: string | undefined, error: unknown): boolean {
  if (name === undefined) return false;
  const state = sqlState(error);
  return state !== undefined && SPOILED_PREPARED.has(state);
}

async function onPool(pool: PgPoolLike, query: PgQueryConfig): Promise<PgResult> {
  const connection = await pool.connect();
  let lost: Error | undefined;
  const onError = (error: Error): void => {
    lost ??= error;
  };
  connection.on?.('error', onError);
  try {
    return await connection.query(query);
  } catch (error) {
    if (!isServerError(error) || isConnectionLost(error) || spoilsPrepared(query.name, error))
      lost ??= error as Error;
    throw error;
  } finally {
    connection.removeListener?.('error', onError);
    connection.release(lost ?? false);
  }
}

function poolAdapter(pool: PgPoolLike): SqlClient {
  return {
    kind: 'pg-pool',
    async query<R extends SqlRow>(text: string, params?: readonly unknown[]) {
      return (await onPool(pool, config(text, params))).rows as R[];
    },
    async queryNamed<R extends SqlRow>(name: string, text: string, params: readonly unknown[]) {
      return (await onPool(pool, config(text, params, name))).rows as R[];
    },
    async executeNamed(name: string, text: string, params: readonly unknown[]) {
      return (await onPool(pool, config(text, params, name))).rowCount ?? 0;
    },
    async queryResult<R extends SqlRow>(text: string, params: readonly unknown[], name?: string) {
      const { rows, rowCount } = await onPool(pool, config(text, params, name));
      return { rows: rows as R[], rowCount: rowCount ?? rows.length };
    },
    async transaction<T>(fn: (tx: TransactionExecutor) => Promise<T>): Promise<T> {
      const connection = await pool.connect();
      const watch = new LossWatch();
      let suspect: Error | undefined;
      connection.on?.('error', watch.onError);
      try {
        return await watch.run(() =>
          inTransaction(async (text, params, name) => {
            try {
              return await connection.query(config(text, params, name));
            } catch (error) {
              watch.saw(error);
              // A failed COMMIT/ROLLBACK, an error not from the server, or a prepared statement
              // the connection can no longer run: do not hand it out again.
              if (
                text === 'COMMIT' ||
                text === 'ROLLBACK' ||
                !isServerError(error) ||
                spoilsPrepared(name, error)
              )
                suspect ??= error as Error;
              throw error;
            }
          }, fn),
        );
      } finally {
        connection.removeListener?.('error', watch.onError);
        connection.release(watch.lost ?? suspect ?? false);
      }
    },
  };
}

function pgClientAdapter(client: PgClientLike): SqlClient {
  // One connection: a transaction must own it from BEGIN to COMMIT, so every use of the
  // client through this adapter waits its turn.
  let tail: Promise<unknown> = Promise.resolve();
  function exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = tail.then(fn, fn);
    tail = run.catch(() => {});
    return run;
  }
  const run = (text: string, params?: readonly unknown[], name?: string) =>
    client.query(config(text, params, name));
  const raw = async (text: string, params?: readonly unknown[], name?: string) =>
    (await run(text, params, name)).rows;
  const count = async (text: string, params: readonly unknown[], name: string) =>
    (await client.query(config(text, params, name))).rowCount ?? 0;
  return {
    kind: 'pg-client',
    query<R extends SqlRow>(text: string, params?: readonly unknown[]) {
      return exclusive(() => raw(text, params)) as Promise<R[]>;
    },
    queryNamed<R extends SqlRow>(name: string, text: string, params: readonly unknown[]) {
      return exclusive(() => raw(text, params, name)) as Promise<R[]>;
    },
    executeNamed(name: string, text: string, params: readonly unknown[]) {
      return exclusive(() => count(text, params, name));
    },
    queryResult<R extends SqlRow>(text: string, params: readonly unknown[], name?: string) {
      return exclusive(async () => {
        const { rows, rowCount } = await run(text, params, name);
        return { rows: rows as R[], rowCount: rowCount ?? rows.length };
      });
    },
    transaction<T>(fn: (tx: TransactionExecutor) => Promise<T>): Promise<T> {
      const watch = new LossWatch();
      return exclusive(async () => {
        // Only while the transaction holds it: outside, the client's errors are its owner's.
        client.on?.('error', watch.onError);
        try {
          return await watch.run(() =>
            inTransaction(async (text, params, name) => {
              try {
                return await run(text, params, name);
              } catch (error) {
                watch.saw(error);
                throw error;
              }
            }, fn),
          );
        } finally {
          client.removeListener?.('error', watch.onError);
        }
      });
    },
  };
}

function pgliteAdapter(db: PGliteLike): SqlClient {
  // PGlite is one connection too, and already queues plain queries behind a running
  // transaction, so its own transaction() is the lock.
  const query = async <R extends SqlRow>(text: string, params?: readonly unknown[]) =>
    (await db.query(text, params === undefined ? undefined : [...params])).rows as R[];
  // The store's fixed statements (the hot path) share trips into the engine.
  const statements = new StatementQueue(db);
  return {
    kind: 'pglite',
    dataDir: db.dataDir,
    query,
    queryNamed: async <R extends SqlRow>(name: string, text: string, params: readonly unknown[]) =>
      (await statements.query(name, text, params)) as R[],
    // A multi-statement answer gives no row count per statement: the rows returned are it.
    executeNamed: async (name, text, params) =>
      (await statements.query(name, `${text} RETURNING 1 AS changed`, params)).length,
    async queryResult<R extends SqlRow>(text: string, params: readonly unknown[]) {
      const { rows, rowCount, affectedRows } = await db.query(text, [...params]);
      // affectedRows alone is 0 for a SELECT: the larger of the two is pg's rowCount.
      return { rows: rows as R[], rowCount: rowCount ?? Math.max(affectedRows ?? 0, rows.length) };
    },
    async transaction<T>(fn: (tx: TransactionExecutor) => Promise<T>): Promise<T> {
      try {
        return await db.transaction((tx) => {
          const query = async <R extends SqlRow>(text: string, params?: readonly unknown[]) =>
            (await tx.query(text, params === undefined ? undefined : [...params])).rows as R[];
          return fn({ query, queryNamed: (_name, text, params) => query(text, params) });
        });
      } catch (error) {
        // PGlite's own words for pg's silent ROLLBACK (see inTransaction): one error for both.
        if (error instanceof Error && /rolled back instead of committed/i.test(error.message)) {
          throw new RolledBackError({ cause: error });
        }
        throw error;
      }
    },
  };
}

/**
 * Watches one local transaction's connection: once it is known lost (the connection's `'error'`
 * event, or a statement failing because of it), whatever the transaction then throws becomes a
 * `ConnectionLostError`, since that is what the caller has to act on.
 */
class LossWatch {
  lost: Error | undefined;
  readonly onError = (error: Error): void => {
    this.lost ??= error;
  };

  saw(error: unknown): void {
    if (isConnectionLost(error)) this.lost ??= error as Error;
  }

  async run<T>(transaction: () => Promise<T>): Promise<T> {
    try {
      return await transaction();
    } catch (error) {
      if (this.lost === undefined) throw error;
      throw new ConnectionLostError(
        `the PostgreSQL connection of a local transaction was lost (${this.lost.message})`,
        { cause: this.lost },
      );
    }
  }
}

// What pg throws for a statement on a connection that has died (no SQLSTATE: it never reached
// a server), and Node's socket errors.
const DEAD_CONNECTION = /Connection terminated|not queryable|Client was closed|Connection ended/i;
const SOCKET_ERRORS = new Set([
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ECONNREFUSED',
  'ENOTCONN',
  'EHOSTUNREACH',
]);

/**
 * The connection is gone: a FATAL or PANIC answer, class 08 (connection exception) or
 * 57P01–57P05 (terminated by an administrator, a crash or an idle-session timeout: the server
 * closes the connection after saying so); or, with no SQLSTATE, a socket error or pg's words for
 * a connection that has died.
 */
export function isConnectionLost(error: unknown): boolean {
  if (error === null || typeof error !== 'object') return false;
  const state = sqlState(error);
  if (state === undefined) {
    const { code, message } = error as { code?: unknown; message?: unknown };
    return (typeof code === 'string' && SOCKET_ERRORS.has(code)) || DEAD_CONNECTION.test(String(message));
  }
  const severity = (error as { severity?: unknown }).severity;
  return severity === 'FATAL' || severity === 'PANIC' || state.startsWith('08') || /^57P0[1-5]$/.test(state);
}

/** An error the server answered with (it has a SQLSTATE), as opposed to a lost connection. */
export function isServerError(error: unknown): boolean {
  return sqlState(error) !== undefined;
}

/** The SQLSTATE of a server error (`23505` unique violation, `42P01` undefined table…). */
export function sqlState(error: unknown): string | undefined {
  if (error === null || typeof error !== 'object') return undefined;
  const { code, severity } = error as { code?: unknown; severity?: unknown };
  // Node's own codes (EPIPE…) can look like a SQLSTATE; only the server's errors carry a severity.
  return typeof code === 'string' && typeof severity === 'string' && /^[0-9A-Z]{5}$/.test(code)
    ? code
    : undefined;
}
