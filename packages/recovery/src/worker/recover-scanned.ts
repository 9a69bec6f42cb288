import type { RecoveryResult, Tcc, TransactionRecord } from '@tcc/core';

/**
 * Key of the `Tcc`'s hidden method that starts an attempt from a scan's copy of the record
 * (`RECOVER_SCANNED` in core's `recovery/scanned.ts`; `Symbol.for`, so it is the same symbol
 * whichever copy of `@tcc/core` made the Tcc).
 */
const RECOVER_SCANNED = Symbol.for('@tcc/core.recoverScanned');

/** One recovery attempt of `xid` from the copy a scan read. */
export function recoverScanned(tcc: Tcc, xid: string, record: TransactionRecord): Promise<RecoveryResult> {
  const scanned = (
    tcc as unknown as Record<symbol, (xid: string, record: TransactionRecord) => Promise<RecoveryResult>>
  )[RECOVER_SCANNED];
  return scanned!.call(tcc, xid, record);
}
