import { CorruptRecordError, recordShapeProblem, type TransactionRecord } from '@tcc/core/storage';

/** The row's own `version` and `status` columns, where the statement read them. */
export interface RecordColumns {
  readonly version?: unknown;
  readonly status?: unknown;
}

/**
 * Reads a stored record back, checking the shape the runtime relies on. Anything else —
 * not JSON, a missing or mistyped field, a record stored under another xid, a `version` or
 * `status` column that disagrees with the JSON — is a `CorruptRecordError` naming the row's xid.
 * Writes compare-and-set on the `version` column and scans filter on `status`: a record whose
 * columns say otherwise would be handed out with a version no write can match, `busy` for ever.
 */
export function decodeRecord(key: string, text: unknown, columns: RecordColumns = {}): TransactionRecord {
  if (typeof text !== 'string')
    throw new CorruptRecordError(key, `record column is ${typeof text}, not text`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new CorruptRecordError(key, `not JSON (${(error as Error).message})`, { cause: error });
  }
  const problem = recordShapeProblem(value);
  if (problem !== undefined) throw new CorruptRecordError(key, problem);
  const record = value as TransactionRecord;
  if (record.xid !== key) throw new CorruptRecordError(key, `it holds xid ${JSON.stringify(record.xid)}`);
  const { version, status } = columns;
  if (version !== undefined && Number(version) !== record.version) {
    throw new CorruptRecordError(
      key,
      `version column ${String(version)} differs from the record's version ${record.version}`,
    );
  }
  if (status !== undefined && status !== record.status) {
    throw new CorruptRecordError(
      key,
      `status column ${JSON.stringify(status)} differs from the record's status ${JSON.stringify(record.status)}`,
    );
  }
  return record;
}
