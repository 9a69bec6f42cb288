import { type Batched, TurnBatcher } from '@tcc/core/storage';
import type { SqlRow } from '../client.js';
import { fillParams, literal } from './sql-literal.js';

/** What the queue needs of PGlite: `exec` answers one result per statement of the text. */
export interface PGliteExec {
  exec(text: string): Promise<ReadonlyArray<{ rows: unknown[] }>>;
}

interface Statement {
  readonly name: string;
  readonly text: string;
  /** The parameters as SQL literals, made when the statement was issued (bad values fail there). */
  readonly args: readonly string[];
}

/** A statement waiting for its trip, and its caller. */
type Pending = Batched<Statement, SqlRow[]>;

/** Most statements sent in one trip: bounds the text PGlite parses at once. */
const MAX_BATCH = 64;
// Unquoted, so folded to lower case by PostgreSQL: names must not differ by case alone.
const NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/**
 * Runs the store's fixed statements on PGlite, which is one connection running one statement
 * at a time, synchronously on this thread. A trip into the engine costs several times a small
 * write's own work, and parsing and planning a statement about as much as executing it, so:
 * - each statement is prepared once per database (`PREPARE <name>`), then run as
 *   `EXECUTE <name>(<literals>)`;
 * - the statements issued during one turn of the event loop (under load: those of every
 *   request whose data arrived in that turn) go together as one multi-statement text, sent
 *   once the turn's I/O callbacks have run (`TurnBatcher`). A lone statement waits only for
 *   the end of the turn. One trip at a time (`serial`): the statements issued during a trip
 *   go in the next one.
 *
 * PostgreSQL runs a multi-statement text as one transaction: if any statement fails, none of
 * them took effect, and each is then run again alone so that every caller gets its own
 * outcome, as if it had been sent by itself.
 */
export class StatementQueue {
  readonly #statements = new TurnBatcher<Statement, SqlRow[]>((batch) => this.#send(batch), {
    serial: true,
    maxBatch: MAX_BATCH,
  });
  /**
   * Statements prepared in this database, by name: how many parameters each takes, or
   * `false` if it could not be prepared (it is then sent as text).
   */
  readonly #prepared = new Map<string, number | false>();

  constructor(private readonly db: PGliteExec) {}

  /** Runs `text` (with `$n` parameters, and no other `$`) under the statement name `name`. */
  query(name: string, text: string, params: readonly unknown[]): Promise<SqlRow[]> {
    let args: string[];
    try {
      if (!NAME.test(name))
        throw new TypeError(`statement name ${JSON.stringify(name)} is not an identifier`);
      args = params.map((value, i) => literal(value, String(i + 1)));
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#statements.add({ name, text, args });
  }

  async #send(pending: Pending[]): Promise<void> {
    const batch: Pending[] = [];
    const texts: string[] = [];
    for (const p of pending) {
      // Known names (all but the first use of each) cost no await.
      if (!this.#prepared.has(p.item.name)) await this.#prepare(p.item);
      try {
        texts.push(this.#sql(p.item));
        batch.push(p);
      } catch (error) {
        p.reject(error);
      }
    }
    if (batch.length === 0) return;
    if (batch.length === 1) return this.#alone(batch[0]!);
    let results: ReadonlyArray<{ rows: unknown[] }>;
    try {
      results = await this.db.exec(texts.join(';\n'));
    } catch {
      // Rolled back as a whole: nothing of the batch is written. Each alone tells whose it was.
      for (const pending of batch) await this.#alone(pending);
      return;
    }
    if (results.length !== batch.length) {
      const error = new Error(
        `PGlite answered ${results.length} results to ${batch.length} statements: their outcome is unknown`,
      );
      for (const pending of batch) pending.reject(error);
      return;
    }
    for (const [i, pending] of batch.entries()) pending.resolve(results[i]!.rows as SqlRow[]);
  }

  async #alone(pending: Pending, retry = true): Promise<void> {
    try {
      const [result] = await this.db.exec(this.#sql(pending.item));
      pending.resolve((result?.rows ?? []) as SqlRow[]);
    } catch (error) {
      // Somebody ran DEALLOCATE ALL or DISCARD ALL on the database: prepare again, once.
      if (
        retry &&
        (error as { code?: unknown }).code === '26000' &&
        this.#prepared.get(pending.item.name) !== false
      ) {
        this.#prepared.clear();
        await this.#prepare(pending.item);
        return this.#alone(pending, false);
      }
      pending.reject(error);
    }
  }

  async #prepare({ name, text }: Statement): Promise<void> {
    const prepare = `PREPARE ${name} AS ${text}`;
    const arity = Math.max(0, ...Array.from(text.matchAll(/\$(\d+)/g), (m) => Number(m[1])));
    try {
      await this.db.exec(prepare);
      this.#prepared.set(name, arity);
    } catch (error) {
      try {
        // Prepared already, by a queue this database had before (same name, same statement).
        if ((error as { code?: unknown } | null)?.code !== '42P05') throw error;
        await this.db.exec(`DEALLOCATE ${name}; ${prepare}`);
        this.#prepared.set(name, arity);
      } catch {
        // Not preparable (a parameter whose type cannot be inferred, say): sent as text.
        this.#prepared.set(name, false);
      }
    }
  }

  #sql(p: Statement): string {
    const arity = this.#prepared.get(p.name);
    if (arity !== undefined && arity !== false) {
      // EXECUTE would refuse a wrong count too, but for the whole batch: refuse it here, alone.
      if (p.args.length !== arity) {
        throw new TypeError(`statement ${p.name} takes ${arity} parameters, got ${p.args.length}`);
      }
      return `EXECUTE ${p.name}(${p.args.join(', ')})`;
    }
    return fillParams(p.text, p.args);
  }
}
