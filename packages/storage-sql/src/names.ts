import { createHash } from 'node:crypto';
import { InvalidOptionError } from '@tcc/core/storage';

/** Default table of the transaction log; the barrier uses `<table>_barrier`. */
export const DEFAULT_TABLE = 'tcc_transactions';
export const DEFAULT_SCHEMA = 'public';

// Index and companion table names are `<table>_<suffix>`; PostgreSQL cuts names at 63 bytes.
const MAX_TABLE_LENGTH = 48;
const MAX_SCHEMA_LENGTH = 63;
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Where the store and the barrier keep their tables, already quoted for SQL text. */
export interface SqlNames {
  readonly schema: string;
  readonly table: string;
  /** `"schema"."table"` */
  readonly records: string;
  /** `"schema"."table_migrations"` */
  readonly migrations: string;
  /** `"schema"."table_barrier"` */
  readonly barrier: string;
  /** Quoted schema, for CREATE SCHEMA. */
  readonly quotedSchema: string;
  /** Quotes `<table>_<suffix>` (an index name, unqualified). */
  local(suffix: string): string;
  /** A short stable tag of schema.table, for prepared statement names. */
  readonly tag: string;
}

/**
 * Checks `schema` and `table` and builds the quoted names. Only letters, digits and `_`
 * (not first a digit) are accepted, so names are quoted verbatim and never need escaping;
 * case is kept (they are always quoted).
 */
export function resolveNames(options: { schema?: unknown; table?: unknown }, where: string): SqlNames {
  const schema = identifier(options.schema, DEFAULT_SCHEMA, MAX_SCHEMA_LENGTH, `${where}: schema`);
  const table = identifier(options.table, DEFAULT_TABLE, MAX_TABLE_LENGTH, `${where}: table`);
  const q = (name: string) => `"${name}"`;
  return {
    schema,
    table,
    quotedSchema: q(schema),
    records: `${q(schema)}.${q(table)}`,
    migrations: `${q(schema)}.${q(`${table}_migrations`)}`,
    barrier: `${q(schema)}.${q(`${table}_barrier`)}`,
    local: (suffix) => q(`${table}_${suffix}`),
    // Prepared statements are per connection: two stores sharing one must never share a name,
    // so the tag is a cryptographic hash of the names (schema and table cannot contain NUL).
    tag: createHash('sha1').update(`${schema}\u0000${table}`).digest('hex').slice(0, 12),
  };
}

function identifier(value: unknown, fallback: string, max: number, what: string): string {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !IDENTIFIER.test(value) || value.length > max) {
    const shown = typeof value === 'string' ? JSON.stringify(value) : String(value);
    throw new InvalidOptionError(
      `${what} must be a SQL identifier of letters, digits and _ (not starting with a digit), ` +
        `at most ${max} characters, got ${shown}`,
    );
  }
  return value;
}
