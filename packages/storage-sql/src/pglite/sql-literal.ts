/**
 * Writes `$n` parameters, already made literals, into a statement: for PGlite's simple query
 * protocol, where several statements can share one trip into the engine.
 *
 * Only for the store's own fixed statements, whose text has no `$` other than its parameters
 * (no dollar quoting, no `$` inside a string literal).
 */
export function fillParams(text: string, literals: readonly string[]): string {
  return text.replace(/\$(\d+)/g, (_, n: string) => {
    const value = literals[Number(n) - 1];
    if (value === undefined) throw new TypeError(`statement parameter $${n} has no value`);
    return value;
  });
}

/**
 * One value as a literal. Strings are escape strings (`E'…'`, backslash and quote doubled), so
 * they mean the same whatever `standard_conforming_strings` says; a literal's type is resolved
 * from where it stands, as a parameter's is.
 */
export function literal(value: unknown, name = '?'): string {
  if (value === null || value === undefined) return 'NULL';
  switch (typeof value) {
    case 'string':
      // PostgreSQL text cannot hold NUL; the extended protocol refuses it too.
      if (value.includes('\0')) throw new TypeError(`statement parameter $${name} contains a NUL character`);
      // Most values (ids, and records' JSON) have neither: no copy is made for them.
      if (!value.includes('\\') && !value.includes("'")) return `E'${value}'`;
      return `E'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`statement parameter $${name} is ${value}`);
      // In parentheses: `- $1` must not become the comment `--1`.
      return value < 0 ? `(${value})` : String(value);
    case 'bigint':
      return value < 0n ? `(${value})` : String(value);
    case 'boolean':
      return value ? 'TRUE' : 'FALSE';
    default:
      throw new TypeError(`statement parameter $${name} cannot be written as SQL: ${typeof value}`);
  }
}
