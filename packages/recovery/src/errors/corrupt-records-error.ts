import { TccError } from '@tcc/core';

/** A stored record that could not be read back, as its store reported it. */
export interface CorruptRecordReport {
  /** Where the store keeps it: a Redis key, or the xid for SQL. */
  readonly key: string;
  /** What is wrong with it, in the store's words. */
  readonly reason: string;
}

/** Keys named in the message; `records` holds them all. */
const NAMED = 10;

/**
 * Records that could not be read back (bad JSON, missing fields, a Redis key of the wrong type)
 * were left out of a listing; `records` says which, and why. The rest were listed.
 */
export class CorruptRecordsError extends TccError {
  readonly records: readonly CorruptRecordReport[];

  constructor(records: readonly CorruptRecordReport[]) {
    const keys = records.slice(0, NAMED).map((r) => r.key);
    const rest = records.length > NAMED ? ` and ${records.length - NAMED} more` : '';
    super(
      'TCC_CORRUPT_RECORDS',
      `${records.length} stored record${records.length === 1 ? '' : 's'} could not be read (corrupt) and ` +
        `${records.length === 1 ? 'was' : 'were'} left out: ${keys.join(', ')}${rest}`,
    );
    this.records = records;
  }
}
