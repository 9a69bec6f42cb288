import { hasCode } from '../../base/codes.js';
import type { ParticipantRecord, TransactionRecord } from '../record.js';
import type { TransactionStorage } from '../transaction-storage.js';

/**
 * Writes the next version of a record that was read, for an edit made outside a transaction's
 * own writes (an operator's decision or unpark, a recovery driver parking it): `edit` changes a
 * copy, which is stored with `version + 1` by compare-and-set on the version read. The edit sets
 * `updatedAt` and `dueAt` itself where it means to: unlike the runtime's own record log, an edit
 * takes no claim and leases nothing, so parking, say, leaves both as they were.
 *
 * Resolves with the version written, or `undefined` when another writer changed (or removed)
 * the record since it was read; `read` itself is left as it was. Storage errors are matched by
 * `code`, so this holds for a store built on another copy of `@tcc/core`.
 */
export async function writeNextVersion(
  storage: TransactionStorage,
  read: TransactionRecord,
  edit: (next: TransactionRecord) => void,
): Promise<TransactionRecord | undefined> {
  const next = copyRecord(read);
  edit(next);
  next.version = read.version + 1;
  try {
    await storage.update(next, read.version);
    return next;
  } catch (error) {
    if (hasCode(error, 'TCC_OPTIMISTIC_LOCK')) return undefined;
    throw error;
  }
}

/** A copy that shares nothing a writer changes with the original. */
export function copyRecord(record: TransactionRecord): TransactionRecord {
  // A loop, not `map`: the memory store copies every record it writes and reads.
  const source = record.participants;
  const participants = new Array<ParticipantRecord>(source.length);
  for (let i = 0; i < source.length; i++) participants[i] = { ...source[i]! };
  const copy: TransactionRecord = { ...record, participants, attachments: { ...record.attachments } };
  if (record.claim !== undefined) copy.claim = { ...record.claim };
  if (record.parent !== undefined) copy.parent = { ...record.parent };
  return copy;
}
