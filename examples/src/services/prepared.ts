import type { PGlite, Results } from '@electric-sql/pglite';

/** A statement parameter: the wallets pass ids (checked by the routes) and whole amounts. */
export type Param = string | number;

/** A parameter PostgreSQL cannot take as a literal of the statement. */
export class BadParameterError extends TypeError {
  readonly code = 'BAD_PARAMETER';
}

/**
 * A service's business statements on its PGlite, each prepared once (`PREPARE`) and then run
 * as `EXECUTE name(<literals>)`. `db.query` parses and plans its text on every call, through
 * the extended protocol's several messages: on PGlite that was most of a wallet's cost per
 * statement, three to four times an `EXECUTE` of the same statement.
 */
export class PreparedStatements {
  readonly #prepared = new Map<string, Promise<unknown>>();

  constructor(private readonly db: PGlite) {}

  /**
   * Runs `text` (with `$n` parameters) under `name`, which must be unique to that text in this
   * database. Rejects with PostgreSQL's error (its `code`, such as `23505`) as `db.query` does.
   */
  async run<T>(name: string, text: string, params: readonly Param[]): Promise<Results<T>> {
    const args = params.map(literal).join(', ');
    let prepared = this.#prepared.get(name);
    if (prepared === undefined) {
      prepared = this.db.exec(`PREPARE ${name} AS ${text}`);
      // A failed PREPARE is tried again by the next call, not remembered.
      prepared.catch(() => this.#prepared.delete(name));
      this.#prepared.set(name, prepared);
    }
    await prepared;
    const [result] = await this.db.exec(`EXECUTE ${name}(${args})`);
    return result as Results<T>;
  }
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
