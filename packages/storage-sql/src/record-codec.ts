import { CorruptRecordError, recordShapeProblem, type TransactionRecord } from '@tcc/core';

/**
 * Reads a stored record back, checking the shape the runtime relies on. Anything else —
 * not JSON, a missing or mistyped field, a record stored under another xid — is a
 * `CorruptRecordError` naming the row's xid.
 */
export function decodeRecord(key: string, text: unknown): TransactionRecord {
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
  return record;
}
