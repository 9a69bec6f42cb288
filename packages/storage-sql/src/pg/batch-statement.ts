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

/**
 * Parameters per write, as the single statements take them: a create is the row and `now`;
 * an update the row, the expected version and `now`; a remove the xid, the expected version
 * and `now`. The batch statement takes one array per parameter, kind after kind.
 */
export const PARAMS_PER_WRITE: Record<WriteKind, number> = {
  create: COLUMN_TYPES.length + 1,
  update: COLUMN_TYPES.length + 2,
  remove: 3,
};

export const KIND_ORDER: readonly WriteKind[] = ['create', 'update', 'remove'];

/**
 * One statement that applies any number of creates, compare-and-set updates and removes, each
 * kind a data-modifying CTE over `unnest` of its parameter arrays, and returns the xid of every
 * row it wrote: a write whose xid is missing matched nothing (a duplicate create, a lost
 * compare-and-set), exactly as its single statement would have. The CTEs share one snapshot
 * and must not touch the same row twice, so a batch holds each xid once.
 *
 * Each test is the single statement's, row by row: a create replaces only an expired
 * tombstone (at the create's own `now`), an update or remove matches the expected version of
 * a live row.
 */
export function batchStatement(n: SqlNames): string {
  const t = n.records;
  let next = 0;
  const arrays = (types: readonly string[]) => types.map((type) => `$${++next}::${type}[]`).join(', ');
  const columns = COLUMN_TYPES.map(([c]) => c);
  const types = COLUMN_TYPES.map(([, type]) => type);
  const live = '(r.expires_at IS NULL OR r.expires_at > v.now)';
  // xid is COLLATE "C" in the table; the arrays' text is compared in the column's collation.
  const sameXid = 'r.xid = v.xid COLLATE "C"';

  const createArrays = arrays([...types, 'bigint']);
  const createXid = '$1::text[]';
  const createNow = `$${next}::bigint[]`;
  const create = `INSERT INTO ${t} AS r (${columns.join(', ')})
      SELECT ${columns.map((c) => `v.${c}`).join(', ')} FROM unnest(${createArrays}) AS v(${columns.join(', ')}, now)
      ON CONFLICT (xid) DO UPDATE SET ${columns
        .slice(1)
        .map((c) => `${c} = EXCLUDED.${c}`)
        .join(', ')}
      WHERE r.expires_at IS NOT NULL AND r.expires_at <= (
        SELECT k.now FROM unnest(${createXid}, ${createNow}) AS k(xid, now) WHERE k.xid = EXCLUDED.xid)
      RETURNING r.xid`;

  const update = `UPDATE ${t} AS r SET ${columns
    .slice(1)
    .map((c) => `${c} = v.${c}`)
    .join(', ')}
      FROM unnest(${arrays([...types, 'integer', 'bigint'])}) AS v(${columns.join(', ')}, expected, now)
      WHERE ${sameXid} AND r.version = v.expected AND ${live}
      RETURNING r.xid`;

  const remove = `DELETE FROM ${t} AS r
      USING unnest(${arrays(['text', 'integer', 'bigint'])}) AS v(xid, expected, now)
      WHERE ${sameXid} AND r.version = v.expected AND ${live}
      RETURNING r.xid`;

  return `WITH created AS (${create}),
    updated AS (${update}),
    removed AS (${remove})
    SELECT xid FROM created UNION ALL SELECT xid FROM updated UNION ALL SELECT xid FROM removed`;
}

/** The parameters of {@link batchStatement}: per kind, one array per parameter of its writes. */
export function batchParams(writes: readonly { kind: WriteKind; params: readonly unknown[] }[]): unknown[][] {
  const out: unknown[][] = [];
  for (const kind of KIND_ORDER) {
    const rows = writes.filter((w) => w.kind === kind).map((w) => w.params);
    for (let j = 0; j < PARAMS_PER_WRITE[kind]; j++) out.push(rows.map((p) => p[j]));
  }
  return out;
}
