import { describeValue } from '../../base/checks.js';
import { InvalidOptionError } from '../../base/errors.js';
import { CorruptRecordError } from '../errors.js';
import type { TransactionRecord } from '../record.js';
import { recordShapeProblem } from './record-shape.js';

/** Told about a stored record that a scan (`findStuck`, `list`) skipped because it cannot be read. */
export type CorruptRecordHandler = (error: CorruptRecordError) => void;

/**
 * Copies of record fields that a store keeps beside the JSON to filter and compare-and-set on
 * (a hash field, a column). They must agree with the JSON: a record handed out with a version
 * no write can match would be busy for ever, one with another status would be found by the
 * wrong scans.
 */
export interface RecordCopies {
  /** What the store calls such a copy in messages: `column`, `field`. */
  readonly noun: string;
  readonly version?: unknown;
  readonly status?: unknown;
}

/**
 * Reads a stored record back from its JSON text, checking the shape the runtime relies on,
 * that it is the record of `xid`, and that `copies` agree with it.
 *
 * @param key names the record in the error: the key or row it was read from.
 * @throws {CorruptRecordError} naming `key` and what is wrong.
 */
export function decodeStoredRecord(
  key: string,
  xid: string,
  json: unknown,
  copies?: RecordCopies,
): TransactionRecord {
  if (typeof json !== 'string') {
    throw new CorruptRecordError(
      key,
      json === null || json === undefined
        ? 'its record JSON is missing'
        : `its record JSON is ${typeof json}, not text`,
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (error) {
    throw new CorruptRecordError(key, `not JSON (${(error as Error).message})`, { cause: error });
  }
  const problem = recordShapeProblem(value);
  if (problem !== undefined) throw new CorruptRecordError(key, problem);
  const record = value as TransactionRecord;
  if (record.xid !== xid) throw new CorruptRecordError(key, `it holds xid ${JSON.stringify(record.xid)}`);
  if (copies === undefined) return record;
  const { noun, version, status } = copies;
  if (version !== undefined && version !== null && Number(version) !== record.version) {
    throw new CorruptRecordError(
      key,
      `version ${noun} ${String(version)} differs from the record's version ${record.version}`,
    );
  }
  if (status !== undefined && status !== null && status !== record.status) {
    throw new CorruptRecordError(
      key,
      `status ${noun} ${JSON.stringify(status)} differs from the record's status ${JSON.stringify(record.status)}`,
    );
  }
  return record;
}

/**
 * The `onCorrupt` option of a store, checked, as a handler that never throws: a reporter that
 * fails must not break the scan it reports from. Without one, each skipped record is a process
 * warning (the error itself, so listeners get its `code` and `key`).
 *
 * @param where names the option's owner in the error, e.g. `new RedisStorage`.
 * @throws {InvalidOptionError} if `onCorrupt` is given and is not a function.
 */
export function corruptRecordHandler(onCorrupt: unknown, where: string): CorruptRecordHandler {
  if (onCorrupt === undefined) return (error) => process.emitWarning(error);
  if (typeof onCorrupt !== 'function') {
    throw new InvalidOptionError(`${where}: onCorrupt must be a function, got ${describeValue(onCorrupt)}`);
  }
  return (error) => {
    try {
      onCorrupt(error);
    } catch {
      // The handler's own failure has nowhere better to go than the scan, which must go on.
    }
  };
}

/**
 * For a scan's `catch`: hands a {@link CorruptRecordError} to `report` and returns `undefined`,
 * so the scan skips that record and goes on; any other error is thrown again.
 */
export function skipCorrupt(error: unknown, report: CorruptRecordHandler): undefined {
  if (!(error instanceof CorruptRecordError)) throw error;
  report(error);
  return undefined;
}
