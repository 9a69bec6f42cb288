import type { TransactionRecord } from '../storage/record.js';
import type { RecoveryResult } from './recoverer.js';

/**
 * Key of a `Tcc`'s hidden method `(xid, record) => Promise<RecoveryResult>`: one recovery
 * attempt that starts from the copy of the record a scan has just read (`findStuck`), to save
 * reading it again. It serves `@tcc/recovery`'s worker, which hands each job the record its scan
 * read; applications have no use for it, so it is on no entry point and not in `Tcc`'s type.
 * `Symbol.for`, so a worker and a `Tcc` from two copies of `@tcc/core` still find each other.
 */
export const RECOVER_SCANNED = Symbol.for('@tcc/core.recoverScanned');

export type RecoverScanned = (xid: string, record: TransactionRecord) => Promise<RecoveryResult>;
