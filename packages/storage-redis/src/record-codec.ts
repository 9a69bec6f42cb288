import { CorruptRecordError, recordShapeProblem, type TransactionRecord } from '@tcc/core/storage';

/**
 * Reads a stored record back: the JSON of the `r` field, checked field by field so a damaged
 * or hand-written value is reported with its key instead of travelling on as a bad record.
 *
 * @throws {CorruptRecordError} naming `key` and what is wrong.
 */
export function decodeRecord(
  key: string,
  xid: string,
  version: string | null,
  json: string | null,
): TransactionRecord {
  if (json === null) throw new CorruptRecordError(key, 'the record field "r" is missing');
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (error) {
    throw new CorruptRecordError(key, `not JSON (${(error as Error).message})`, { cause: error });
  }
  const problem = recordShapeProblem(value);
  if (problem !== undefined) throw new CorruptRecordError(key, problem);
  const record = value as TransactionRecord;
  if (record.xid !== xid) throw new CorruptRecordError(key, `holds xid ${JSON.stringify(record.xid)}`);
  if (version !== null && String(record.version) !== version) {
    throw new CorruptRecordError(key, `version field ${version} differs from the record's ${record.version}`);
  }
  return record;
}
