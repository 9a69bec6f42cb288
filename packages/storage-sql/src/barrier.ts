import { InvalidOptionError, StorageError, TccError, TransactionHangingError } from '@tcc/core/storage';
import {
  type SqlClientInput,
  type SqlExecutor,
  sqlState,
  type TransactionExecutor,
  toSqlClient,
} from './client.js';
import { ConnectionLostError } from './errors.js';
import { barrierTable, lockSchema } from './migrations.js';
import { resolveNames, type SqlNames } from './names.js';

/** Where the fence rows live: `<schema>.<table>_barrier`, the same names as `SqlStorage`'s options. */
export interface BarrierOptions {
  /** Default `public`. */
  schema?: string;
  /** The log's table name (default `tcc_transactions`); fences go to `<table>_barrier`. */
  table?: string;
}

/**
 * What the barrier reads of `tcc.current()`: a `TransactionContext` is one. Declared here so
 * that the barrier needs no more of core than its storage entry point.
 */
export interface BarrierContext {
  readonly globalId: string;
  readonly xid: string;
  readonly phase: 'try' | 'confirm' | 'cancel';
  readonly participantId: string | undefined;
}

const PHASES = new Set(['try', 'confirm', 'cancel']);
const namesCache = new Map<string, SqlNames>();

/**
 * Runs `fn(tx)` — the business SQL of a try, confirm or cancel — in one local database
 * transaction together with a fence row keyed by (globalId, branch, phase), the branch being
 * `<xid>/<participantId>` of `ctx`. The effects of `fn` and the fence commit or roll back
 * together, so, even across crashes and repeats:
 *
 * - **try**: inserts the `try` fence and runs `fn`. If the fence is already there, either the
 *   try ran before (a repeat: `fn` is skipped, `undefined` returned) or a cancel got there
 *   first (the fence was written by that cancel): then the try is *hanging* and is refused
 *   with `TransactionHangingError` (code `TCC_TRANSACTION_HANGING`); `fn` never runs.
 * - **confirm**: inserts the `confirm` fence and runs `fn`; a repeat is skipped.
 * - **cancel**: first inserts the `try` fence on the try's behalf (reason `cancel`), then the
 *   `cancel` fence. If the `try` insert succeeded, the try never committed: nothing to undo,
 *   `fn` is skipped (empty rollback), and a try arriving later is refused as hanging. If the
 *   `cancel` fence already existed, this is a repeat and `fn` is skipped. Otherwise `fn` runs.
 *   A cancel racing a try still running waits on the try's uncommitted fence row, and then
 *   sees either its committed effects (and undoes them) or none (empty rollback).
 *
 * If `fn` throws, the transaction rolls back — fence included — and the error is rethrown,
 * so the phase can run again. Returns what `fn` returned, or `undefined` when it was skipped.
 *
 * `ctx` is `tcc.current()` inside a compensable method (a try, confirm or cancel of a
 * participant). `client` is a `pg.Pool`, a `pg.Client` or a PGlite holding the business data
 * and the `<table>_barrier` table (`SqlStorage#migrate()` creates it; `migrateBarrier()` does
 * for a database that holds no log). `tx` runs statements in that transaction.
 *
 * For a phase that is one statement, `barrierQuery` does the same in one round trip.
 */
export async function barrier<T>(
  client: SqlClientInput,
  ctx: BarrierContext | undefined,
  fn: (tx: SqlExecutor) => Promise<T>,
  options: BarrierOptions = {},
): Promise<T | undefined> {
  const sql = toSqlClient(client, 'barrier');
  const names = barrierNames(options, 'barrier');
  const { globalId, branch, phase } = fenceOf(ctx, 'barrier');
  if (typeof fn !== 'function')
    throw new InvalidOptionError(`barrier: fn must be a function, got ${typeof fn}`);

  let fnError: { error: unknown } | undefined;
  const runFn = async (tx: SqlExecutor): Promise<T> => {
    try {
      return await fn(tx);
    } catch (error) {
      fnError = { error };
      throw error;
    }
  };
  // The barrier's own statements are prepared once per connection (named by the table's tag).
  const insert = async (tx: TransactionExecutor, fencePhase: string, reason: string): Promise<boolean> => {
    const rows = await tx.queryNamed(
      `tcc_${names.tag}_b_fence`,
      `INSERT INTO ${names.barrier} (global_id, branch_id, phase, reason) VALUES ($1, $2, $3, $4)
       ON CONFLICT DO NOTHING RETURNING 1 AS ok`,
      [globalId, branch, fencePhase, reason],
    );
    return rows.length > 0;
  };

  try {
    return await sql.transaction(async (tx): Promise<T | undefined> => {
      if (phase === 'try') {
        if (await insert(tx, 'try', 'try')) return runFn(tx);
        const [row] = await tx.queryNamed<{ reason: string }>(
          `tcc_${names.tag}_b_try_reason`,
          `SELECT reason FROM ${names.barrier} WHERE global_id = $1 AND branch_id = $2 AND phase = 'try'`,
          [globalId, branch],
        );
        if (row?.reason === 'cancel') {
          throw new TransactionHangingError(
            globalId,
            `branch ${branch} was cancelled before its try arrived (fence in ${names.barrier})`,
          );
        }
        return undefined; // the try already ran
      }
      if (phase === 'confirm') return (await insert(tx, 'confirm', 'confirm')) ? runFn(tx) : undefined;
      const tryNeverRan = await insert(tx, 'try', 'cancel');
      const firstCancel = await insert(tx, 'cancel', 'cancel');
      return firstCancel && !tryNeverRan ? runFn(tx) : undefined;
    });
  } catch (error) {
    if (error instanceof ConnectionLostError) {
      throw new ConnectionLostError(
        `barrier ${phase} of ${globalId} ${branch} on ${names.barrier}: its PostgreSQL connection was lost ` +
          `(${error.cause instanceof Error ? error.cause.message : String(error.cause)})`,
        { cause: error.cause },
      );
    }
    if (fnError !== undefined && fnError.error === error) throw error;
    if (error instanceof TccError) throw error;
    throw barrierError(names, `${phase} of ${globalId} ${branch}`, error);
  }
}

/**
 * Creates `<table>_barrier` if missing, for a business database that does not hold the log
 * (where `SqlStorage#migrate()` already created it, this does nothing).
 */
export async function migrateBarrier(client: SqlClientInput, options: BarrierOptions = {}): Promise<void> {
  const sql = toSqlClient(client, 'migrateBarrier');
  const names = barrierNames(options, 'migrateBarrier');
  try {
    await sql.transaction(async (tx) => {
      await lockSchema(tx, names);
      await tx.query(barrierTable(names, true));
    });
  } catch (error) {
    if (error instanceof TccError) throw error;
    throw barrierError(names, 'migrateBarrier', error);
  }
}

/** The names of `options` (checked once per schema and table). */
export function barrierNames(options: BarrierOptions, where: string): SqlNames {
  if (options === null || typeof options !== 'object') {
    throw new InvalidOptionError(`${where}: options must be an object, got ${String(options)}`);
  }
  const key = `${String(options.schema)}\u0000${String(options.table)}`;
  let names = namesCache.get(key);
  if (names === undefined) {
    names = resolveNames(options, where);
    namesCache.set(key, names);
  }
  return names;
}

/** The fence key of `ctx`, refused with a clear error outside a try, confirm or cancel. */
export function fenceOf(
  ctx: BarrierContext | undefined,
  where: string,
): { globalId: string; branch: string; phase: 'try' | 'confirm' | 'cancel' } {
  if (
    ctx === null ||
    typeof ctx !== 'object' ||
    typeof ctx.globalId !== 'string' ||
    typeof ctx.xid !== 'string' ||
    !PHASES.has(ctx.phase)
  ) {
    throw new InvalidOptionError(
      `${where}: ctx must be the TransactionContext of a try, confirm or cancel (tcc.current() inside a ` +
        `compensable method), got ${ctx === undefined ? 'undefined (no transaction in scope)' : typeof ctx}`,
    );
  }
  if (typeof ctx.participantId !== 'string') {
    throw new InvalidOptionError(
      `${where}: transaction ${ctx.globalId} has no participant in scope (the body of the root itself): ` +
        `call ${where}() inside the try, confirm or cancel of a compensable method`,
    );
  }
  return { globalId: ctx.globalId, branch: `${ctx.xid}/${ctx.participantId}`, phase: ctx.phase };
}

/** A failure of the fence table itself, with the hint to create it when it is missing. */
export function barrierError(names: SqlNames, what: string, error: unknown): StorageError {
  const message = error instanceof Error ? error.message : String(error);
  const state = sqlState(error);
  const hint =
    state === '42P01' || state === '3F000'
      ? ` (create it: \`await storage.migrate()\` or \`await migrateBarrier(client)\`)`
      : '';
  return new StorageError(`barrier ${what} on ${names.barrier} failed: ${message}${hint}`, { cause: error });
}
