import { InvalidOptionError, StorageError, TccError, TransactionHangingError } from '@tcc/core/storage';
import { type BarrierContext, type BarrierOptions, barrierError, barrierNames, fenceOf } from './barrier.js';
import { knownText, type NamedStatement } from './barrier-statements.js';
import { checkPlaceholders, spliceCte } from './barrier-text.js';
import {
  isConnectionLost,
  isServerError,
  type SqlClient,
  type SqlClientInput,
  type SqlRow,
  sqlState,
  toSqlClient,
} from './client.js';
import { ConnectionLostError } from './errors.js';
import type { SqlNames } from './names.js';

/** What the business statement answered: its rows and pg's row count. */
export interface BarrierQueryResult<R extends SqlRow = SqlRow> {
  rows: R[];
  /** Rows the statement changed (INSERT, UPDATE, DELETE, MERGE) or returned (SELECT). */
  rowCount: number;
}

// Statements per phase at most. A cancel that found the try committing under it needs a second
// (its snapshot then sees that try); the rest are for deadlocks (see isRetryable).
const ROUNDS = 5;

/**
 * The barrier of {@link barrier} for one business statement, in one round trip: the fence and
 * `text` are one autocommitted statement (the fence a data-modifying CTE in front of `text`),
 * so they commit or fail together, even across crashes. Resolves to the statement's
 * `{ rows, rowCount }` when it ran, or to `undefined` when the fence says this phase already
 * ran or is an empty rollback. The rules are `barrier`'s:
 *
 * - **try**: writes the `try` fence with `text`. If the fence is there, a repeat resolves to
 *   `undefined` and a try whose fence a cancel wrote first is hanging:
 *   `TransactionHangingError` (code `TCC_TRANSACTION_HANGING`); `text`'s effects never commit.
 * - **confirm**: writes the `confirm` fence with `text`; a repeat resolves to `undefined`.
 * - **cancel**: `text` commits only if the try's fence was committed before the statement
 *   began, so the statement sees every effect of the try it undoes. When the try never ran,
 *   the statement fails and a second one writes the `try` fence (reason `cancel`) and the
 *   `cancel` fence alone (empty rollback, `undefined`; a later try is refused as hanging). A
 *   cancel racing a running try waits on the try's uncommitted fence row in that second
 *   statement, then undoes the try in a third (it committed) or records the empty rollback
 *   (it did not). A repeat resolves to `undefined`.
 *
 * Round trips: one for a try, confirm or cancel that runs, and for a repeated confirm or
 * cancel; two for a repeated or hanging try, an empty rollback (and its repeats) and a failed
 * statement (the fence is read to tell whether the phase had to run); three for a cancel that
 * waited on a running try. A deadlock or serialization failure is retried (a phase that will
 * be refused still takes its statement's row locks first: PostgreSQL runs the fence CTE after
 * the statement that does not read it).
 *
 * The statement's effects commit with the fence: a rule that must fail the try has to fail
 * the statement (a `CHECK`, a constraint); a try that resolved and is then thrown out of is
 * still cancelled with its fence in place. When a statement cannot express the rule, or a
 * phase needs several, use `barrier`.
 *
 * `text` is one SELECT, INSERT, UPDATE, DELETE or MERGE, possibly with its own `WITH` (the
 * fence joins that list), with placeholders `$1`…`$n` for `values` (one each); anything else
 * is refused with `InvalidOptionError` before any SQL runs. An error of the statement itself
 * (a constraint, a syntax error) is the driver's, as `client.query` would throw it, and
 * nothing is written; it is thrown only when the phase had to run (a repeat resolves to
 * `undefined` as `barrier` would, without running it). If the connection is lost the outcome
 * is unknown: `ConnectionLostError`; run the phase again, the fence makes that safe.
 *
 * `client`, `ctx` and `options` are `barrier`'s. On a `pg.Pool` each statement may use a
 * different connection; none holds one between statements, and a statement the server refuses
 * (the try's CHECK, the empty rollback's probe) leaves its connection in the pool. On a pool
 * each phase statement is prepared once per connection, named by a hash of its text; past 256
 * distinct texts (texts built on the fly) the rest are sent unnamed, as they always are on a
 * lone `pg.Client`. A table altered under a running pool can fail a phase once per connection
 * with `cached plan must not change result type` (the connection is then replaced): run it
 * again. PostgreSQL may run a prepared statement with a generic plan after five runs; where
 * that plan is poor for your data, use `barrier`, whose statements are yours to send.
 */
export async function barrierQuery<R extends SqlRow = SqlRow>(
  client: SqlClientInput,
  ctx: BarrierContext | undefined,
  text: string,
  values: readonly unknown[] = [],
  options: BarrierOptions = {},
): Promise<BarrierQueryResult<R> | undefined> {
  const where = 'barrierQuery';
  const sql = toSqlClient(client, where);
  const names = barrierNames(options, where);
  const fence = fenceOf(ctx, where);
  if (!Array.isArray(values)) {
    throw new InvalidOptionError(
      `${where}: values must be an array (one value per $n placeholder), got ${values === null ? 'null' : typeof values}`,
    );
  }
  const known = knownText(names.barrier, text, where);
  checkPlaceholders(known.shape, values.length, where);
  // The fence's key follows the caller's values: $n+1 the global id, $n+2 the branch.
  const g = `$${values.length + 1}::text`;
  const b = `$${values.length + 2}::text`;
  const params = [...values, fence.globalId, fence.branch];
  const run: Run = {
    sql,
    names,
    what: `${fence.phase} of ${fence.globalId} ${fence.branch}`,
    statement: (phase, cte) =>
      known.statement(phase, () => spliceCte(text as string, known.shape, `tcc_barrier_fence AS (${cte()})`)),
    params,
    key: [fence.globalId, fence.branch],
    g,
    b,
  };
  try {
    if (fence.phase === 'try') return await tryPhase(run);
    if (fence.phase === 'confirm') return await confirmPhase(run);
    return await cancelPhase(run);
  } catch (error) {
    if (error instanceof TccError || (isServerError(error) && !isConnectionLost(error))) throw error;
    if (isConnectionLost(error)) {
      throw new ConnectionLostError(
        `barrierQuery ${run.what} on ${names.barrier}: its PostgreSQL connection was lost, the statement may ` +
          `or may not have committed; run the phase again (${error instanceof Error ? error.message : String(error)})`,
        { cause: error },
      );
    }
    throw error;
  }
}

interface Run {
  sql: SqlClient;
  names: SqlNames;
  what: string;
  /** The business statement with the phase's fence `cte` spliced in front (built once per text). */
  statement(phase: 'try' | 'confirm' | 'cancel', cte: () => string): NamedStatement;
  /** The caller's values, then the fence key. */
  params: unknown[];
  /** The fence key alone, for the statements of the barrier's own ($1, $2). */
  key: [string, string];
  /** The fence key's placeholders in `statement`. */
  g: string;
  b: string;
}

function fenceInsert(run: Run, phase: 'try' | 'confirm'): string {
  return `INSERT INTO ${run.names.barrier} (global_id, branch_id, phase, reason) VALUES (${run.g}, ${run.b}, '${phase}', '${phase}')`;
}

function send<R extends SqlRow>(run: Run, statement: NamedStatement): Promise<BarrierQueryResult<R>> {
  // Named on a pool only: a pool drops a connection whose prepared statement went bad (a table
  // altered under it), a lone pg.Client would keep failing it; and pg leaves a name it could
  // not bind (a value it cannot serialize) broken on that client for good.
  const name = run.sql.kind === 'pg-pool' ? statement.name : undefined;
  return run.sql.queryResult<R>(statement.text, run.params, name);
}

async function tryPhase<R extends SqlRow>(run: Run): Promise<BarrierQueryResult<R> | undefined> {
  for (let round = 1; ; round++) {
    try {
      // A try fence already there (committed, or committed while this waited on it) fails the
      // whole statement with a unique violation: the business effect never commits.
      return await send<R>(
        run,
        run.statement('try', () => fenceInsert(run, 'try')),
      );
    } catch (error) {
      if (!isServerError(error) || isConnectionLost(error)) throw error;
      const reason = await readFence(run, 'try');
      if (reason === 'cancel') {
        throw new TransactionHangingError(
          run.key[0],
          `branch ${run.key[1]} was cancelled before its try arrived (fence in ${run.names.barrier})`,
        );
      }
      if (reason !== undefined) return undefined; // the try already ran
      if (!(isRetryable(error) && round < ROUNDS)) throw error;
    }
  }
}

async function confirmPhase<R extends SqlRow>(run: Run): Promise<BarrierQueryResult<R> | undefined> {
  for (let round = 1; ; round++) {
    try {
      return await send<R>(
        run,
        run.statement('confirm', () => fenceInsert(run, 'confirm')),
      );
    } catch (error) {
      if (!isServerError(error) || isConnectionLost(error)) throw error;
      if (isFenceViolation(run, error, '23505')) return undefined; // the confirm already ran
      // The statement's own failure matters only if the confirm had to run.
      if ((await readFence(run, 'confirm')) !== undefined) return undefined;
      if (!(isRetryable(error) && round < ROUNDS)) throw error;
    }
  }
}

/**
 * Sub-statements of one statement share its snapshot, and waiting on a row does not renew it:
 * a cancel that conflicted with a try fence committed while it ran would undo a try whose
 * effects it cannot see. So the cancel fence's `reason` is NULL — a not-null violation that
 * fails the statement, business effect included — unless the try's own fence (reason `try`)
 * is in the snapshot. The check is a subquery, not a constant, so the planner cannot fold it.
 * A cancel fence already there fails it with a unique violation instead (a repeat).
 */
async function cancelPhase<R extends SqlRow>(run: Run): Promise<BarrierQueryResult<R> | undefined> {
  const { barrier } = run.names;
  const statement = run.statement(
    'cancel',
    () =>
      `INSERT INTO ${barrier} (global_id, branch_id, phase, reason) ` +
      `SELECT ${run.g}, ${run.b}, 'cancel', CASE WHEN EXISTS (SELECT FROM ${barrier} ` +
      `WHERE global_id = ${run.g} AND branch_id = ${run.b} AND phase = 'try' AND reason = 'try') THEN 'cancel' END`,
  );
  for (let round = 1; ; round++) {
    try {
      return await send<R>(run, statement);
    } catch (error) {
      if (!isServerError(error) || isConnectionLost(error)) throw error;
      if (isFenceViolation(run, error, '23505')) return undefined; // the cancel already ran
      const state = await cancelFencesAlone(run);
      if (state !== 'try-ran') return undefined; // an empty rollback, recorded; or a repeat
      // The try ran and is not cancelled. The statement failed for its own reasons (thrown),
      // or the try committed after its snapshot was taken (again: the next snapshot sees it).
      const stale = isFenceViolation(run, error, '23502');
      if (!(stale || isRetryable(error))) throw error;
      if (round >= ROUNDS) {
        if (!stale) throw error;
        throw new StorageError(
          `barrierQuery ${run.what} on ${barrier}: the try's fence is there and no cancel fence, yet the try's ` +
            `fence is not one a try wrote (reason 'try'); were this branch's fence rows changed by hand?`,
        );
      }
    }
  }
}

/**
 * A deadlock or serialization failure aborted the statement, fence included: safe to run it
 * again. The business statement runs before its fence is checked (PostgreSQL runs a CTE the
 * main statement does not read after it), so a phase about to be refused still takes its
 * statement's row locks, and can deadlock with another phase of the same branch.
 */
function isRetryable(error: unknown): boolean {
  const state = sqlState(error);
  return state === '40P01' || state === '40001';
}

/**
 * Writes the `try` fence on the try's behalf and the `cancel` fence, only if no try fence was
 * there; an uncommitted one (a try still running) is waited for. Runs no business SQL.
 */
async function cancelFencesAlone(run: Run): Promise<'empty-rollback' | 'cancelled' | 'try-ran'> {
  const { barrier } = run.names;
  try {
    const { rows } = await run.sql.queryResult<{ emptied: boolean; cancelled: boolean }>(
      `WITH try_fence AS (
         INSERT INTO ${barrier} (global_id, branch_id, phase, reason) VALUES ($1, $2, 'try', 'cancel')
         ON CONFLICT DO NOTHING RETURNING 1),
       cancel_fence AS (
         INSERT INTO ${barrier} (global_id, branch_id, phase, reason) SELECT $1, $2, 'cancel', 'cancel' FROM try_fence
         ON CONFLICT DO NOTHING RETURNING 1)
       SELECT EXISTS (SELECT FROM try_fence) AS emptied,
              EXISTS (SELECT FROM ${barrier} WHERE global_id = $1 AND branch_id = $2 AND phase = 'cancel') AS cancelled`,
      run.key,
      `tcc_${run.names.tag}_bq_empty_rollback`,
    );
    const [row] = rows;
    if (row?.emptied) return 'empty-rollback';
    return row?.cancelled ? 'cancelled' : 'try-ran';
  } catch (error) {
    if (isConnectionLost(error)) throw error;
    throw barrierError(run.names, `barrierQuery ${run.what}`, error);
  }
}

/** The `reason` of the branch's `phase` fence, `undefined` when there is none. */
async function readFence(run: Run, phase: 'try' | 'confirm'): Promise<string | undefined> {
  try {
    const {
      rows: [row],
    } = await run.sql.queryResult<{ reason: string }>(
      `SELECT reason FROM ${run.names.barrier} WHERE global_id = $1 AND branch_id = $2 AND phase = '${phase}'`,
      run.key,
      `tcc_${run.names.tag}_bq_fence_${phase}`,
    );
    return row?.reason;
  } catch (error) {
    if (isConnectionLost(error)) throw error;
    throw barrierError(run.names, `barrierQuery ${run.what}`, error);
  }
}

/** The error is the fence table's own (23505: the fence exists; 23502: the cancel's guard). */
function isFenceViolation(run: Run, error: unknown, state: '23505' | '23502'): boolean {
  if (sqlState(error) !== state) return false;
  const { schema, table } = error as { schema?: unknown; table?: unknown };
  return table === `${run.names.table}_barrier` && (schema === undefined || schema === run.names.schema);
}
