import type { SqlNames } from '../names.js';

/** The log's columns and their types, in the order of the store's `COLUMNS` and `rowValues`. */
export const COLUMN_TYPES = [
  ['xid', 'text'],
  ['global_id', 'text'],
  ['domain', 'text'],
  ['type', 'text'],
  ['status', 'text'],
  ['version', 'integer'],
  ['retries', 'integer'],
  ['created_at', 'bigint'],
  ['updated_at', 'bigint'],
  ['deadline', 'bigint'],
  ['due_at', 'bigint'],
  ['parked_at', 'bigint'],
  ['expires_at', 'bigint'],
  ['record', 'text'],
] as const;

/** The writes that share a statement; their parameters are those of the store's single statements. */
export type WriteKind = 'create' | 'update' | 'remove';

const COLUMNS = COLUMN_TYPES.map(([c]) => c);

/**
 * The names of a write's parameters, as the single statements take them: a create is the row
 * and `now`; an update the row, the expected version and `now`; a remove the xid, the expected
 * version and `now`.
 */
const FIELDS: Record<WriteKind, readonly string[]> = {
  create: [...COLUMNS, 'now'],
  update: [...COLUMNS, 'expected', 'now'],
  remove: ['xid', 'expected', 'now'],
};

export const KIND_ORDER: readonly WriteKind[] = ['create', 'update', 'remove'];

/**
 * One statement that applies any number of creates, compare-and-set updates and removes, each
 * kind a data-modifying CTE over its writes, and returns the xid of every row it wrote: a write
 * whose xid is missing matched nothing (a duplicate create, a lost compare-and-set), exactly as
 * its single statement would have. The CTEs share one snapshot and must not touch the same row
 * twice, so a batch holds each xid once.
 *
 * The writes of each kind come as one JSON array of objects (`$1` creates, `$2` updates, `$3`
 * removes), read by `json_to_recordset`. Arrays per column (`unnest`) would make PostgreSQL
 * plan the statement again on every run: it sizes `unnest` by the arrays it is given, so the
 * plan for each batch looks cheaper than the generic one, and planning this statement took
 * longer than running it. `json_to_recordset` is sized alike for any input, so the prepared
 * statement settles on its generic plan; and JSON costs the client one `JSON.stringify` where
 * pg escaped every element of every array.
 *
 * Each test is the single statement's, row by row: a create replaces only an expired
 * tombstone (at the create's own `now`), an update or remove matches the expected version of
 * a live row.
 */
export function batchStatement(n: SqlNames): string {
  const t = n.records;
  const typed = (extra: readonly (readonly [string, string])[]) =>
    [...COLUMN_TYPES, ...extra].map(([c, type]) => `${c} ${type}`).join(', ');
  const live = '(r.expires_at IS NULL OR r.expires_at > v.now)';
  // xid is COLLATE "C" in the table; the JSON's text is compared in the column's collation.
  const sameXid = 'r.xid = v.xid COLLATE "C"';
  // True of every integer, but PostgreSQL, knowing nothing of the JSON's values, guesses that
  // one row in two hundred is in such a range: so it expects a write or two, not
  // json_to_recordset's fixed 100, and looks each up by the primary key instead of hashing
  // the whole table. (It rewrites `x = x` to `x IS NOT NULL`, which it guesses always true.)
  const fewRows = 'v.expected BETWEEN -2147483648 AND 2147483647';

  const create = `INSERT INTO ${t} AS r (${COLUMNS.join(', ')})
      SELECT ${COLUMNS.map((c) => `v.${c}`).join(', ')} FROM json_to_recordset($1::json) AS v(${typed([['now', 'bigint']])})
      ON CONFLICT (xid) DO UPDATE SET ${COLUMNS.slice(1)
        .map((c) => `${c} = EXCLUDED.${c}`)
        .join(', ')}
      WHERE r.expires_at IS NOT NULL AND r.expires_at <= (
        SELECT k.now FROM json_to_recordset($1::json) AS k(xid text, now bigint) WHERE k.xid = EXCLUDED.xid)
      RETURNING r.xid`;

  const update = `UPDATE ${t} AS r SET ${COLUMNS.slice(1)
    .map((c) => `${c} = v.${c}`)
    .join(', ')}
      FROM json_to_recordset($2::json) AS v(${typed([
        ['expected', 'integer'],
        ['now', 'bigint'],
      ])})
      WHERE ${sameXid} AND r.version = v.expected AND ${live} AND ${fewRows}
      RETURNING r.xid`;

  const remove = `DELETE FROM ${t} AS r
      USING json_to_recordset($3::json) AS v(xid text, expected integer, now bigint)
      WHERE ${sameXid} AND r.version = v.expected AND ${live} AND ${fewRows}
      RETURNING r.xid`;

  return `WITH created AS (${create}),
    updated AS (${update}),
    removed AS (${remove})
    SELECT xid FROM created UNION ALL SELECT xid FROM updated UNION ALL SELECT xid FROM removed`;
}

/** The parameters of {@link batchStatement}: per kind, its writes as one JSON array of objects. */
export function batchParams(writes: readonly { kind: WriteKind; params: readonly unknown[] }[]): string[] {
  return KIND_ORDER.map((kind) => {
    const fields = FIELDS[kind];
    const rows: Record<string, unknown>[] = [];
    for (const write of writes) {
      if (write.kind !== kind) continue;
      const row: Record<string, unknown> = {};
      for (let j = 0; j < fields.length; j++) {
        const value = write.params[j];
        // JSON writes NaN and ±Infinity as null, where the single statement refuses them:
        // refused here too, so the batch fails and each write runs alone, as it would have.
        if (typeof value === 'number' && !Number.isFinite(value)) {
          throw new RangeError(`the log's batch statement cannot hold ${fields[j]} = ${value}`);
        }
        row[fields[j]!] = value ?? null;
      }
      rows.push(row);
    }
    return JSON.stringify(rows);
  });
}
