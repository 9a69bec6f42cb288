import type { PGlite, Results } from '@electric-sql/pglite';
import { type Batched, TurnBatcher } from '@tcc/core/storage';

/** A statement parameter: the wallets pass ids (checked by the routes) and whole amounts. */
export type Param = string | number;

/** A parameter PostgreSQL cannot take as a literal of the statement. */
export class BadParameterError extends TypeError {
  readonly code = 'BAD_PARAMETER';
}

interface Execution {
  readonly name: string;
  readonly text: string;
  /** The parameters as SQL literals. */
  readonly args: string;
}

/** Most statements sent in one trip. */
const MAX_BATCH = 64;
const NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * A service's business statements on its PGlite, each prepared once (`PREPARE`) and then run
 * as `EXECUTE name(<literals>)`: `db.query` parses and plans its text on every call, through
 * the extended protocol's several messages, which on PGlite cost three to four times an
 * `EXECUTE` of the same statement. The statements issued during one turn of the event loop
 * (under load, those of every request whose data arrived in it) go to PGlite in one trip, as the
 * SDK's store sends its own: a trip costs about as much as a small statement's own work.
 *
 * PostgreSQL runs the statements of one trip as one transaction: if one fails, none took
 * effect, and each is run again alone so that every caller gets its own outcome.
 */
export class PreparedStatements {
  readonly #prepared = new Map<string, Promise<unknown>>();
  readonly #trips = new TurnBatcher<Execution, Results>((batch) => this.#send(batch), {
    serial: true,
    maxBatch: MAX_BATCH,
  });

  constructor(private readonly db: PGlite) {}

  /**
   * Runs `text` (with `$n` parameters) under `name`, a lower-case identifier unique to that text
   * in this database. Rejects with PostgreSQL's error (its `code`, such as `23505`) as
   * `db.query` does.
   */
  run<T>(name: string, text: string, params: readonly Param[]): Promise<Results<T>> {
    let args: string;
    try {
      if (!NAME.test(name)) throw new BadParameterError(`statement name ${JSON.stringify(name)}`);
      args = params.map(literal).join(', ');
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#trips.add({ name, text, args }) as Promise<Results<T>>;
  }

  async #send(batch: Batched<Execution, Results>[]): Promise<void> {
    const ready: Batched<Execution, Results>[] = [];
    for (const b of batch) {
      try {
        await this.#prepare(b.item);
        ready.push(b);
      } catch (error) {
        b.reject(error);
      }
    }
    if (ready.length === 1) return this.#alone(ready[0]!);
    if (ready.length === 0) return;
    let results: Results[];
    try {
      results = await this.db.exec(ready.map((b) => execute(b.item)).join(';\n'));
    } catch {
      for (const b of ready) await this.#alone(b);
      return;
    }
    if (results.length !== ready.length) {
      const error = new Error(`PGlite answered ${results.length} results to ${ready.length} statements`);
      for (const b of ready) b.reject(error);
      return;
    }
    for (const [i, b] of ready.entries()) b.resolve(results[i]!);
  }

  async #alone(b: Batched<Execution, Results>): Promise<void> {
    try {
      const [result] = await this.db.exec(execute(b.item));
      b.resolve(result!);
    } catch (error) {
      b.reject(error);
    }
  }

  #prepare({ name, text }: Execution): Promise<unknown> {
    let prepared = this.#prepared.get(name);
    if (prepared === undefined) {
      prepared = this.db.exec(`PREPARE ${name} AS ${text}`);
      // A failed PREPARE is tried again by the next call, not remembered.
      prepared.catch(() => this.#prepared.delete(name));
      this.#prepared.set(name, prepared);
    }
    return prepared;
  }
}

function execute({ name, args }: Execution): string {
  return `EXECUTE ${name}(${args})`;
}

/** A parameter as an SQL literal (standard_conforming_strings: only `'` needs doubling). */
function literal(value: Param): string {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new BadParameterError(`${value} is not a whole number`);
    return String(value);
  }
  if (value.includes('\0')) throw new BadParameterError('a text parameter cannot hold a NUL character');
  return `'${value.replaceAll("'", "''")}'`;
}
