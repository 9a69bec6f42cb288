import type { TransactionRecord } from '../transaction/record.js';

/** What recovery does next with a record (DESIGN.md §7). */
export type RecoveryStep = 'confirm' | 'cancel' | 'fail-try' | 'wait' | 'none';

/**
 * Decides the next step from the record alone, so every driver (the in-process poller, the
 * BullMQ worker, an operator's retry) takes the same decision.
 */
export function decide(record: TransactionRecord, now: number): RecoveryStep {
  switch (record.status) {
    case 'CONFIRMING':
      return 'confirm';
    case 'CANCELLING':
      return 'cancel';
    case 'TRYING':
      // Before the deadline the try may still be running in the process that began it.
      if (now < record.deadline) return 'wait';
      return record.type === 'ROOT' ? 'cancel' : 'fail-try';
    case 'TRIED':
    case 'TRY_FAILED':
      // A branch waits for its root's decision.
      return 'wait';
    case 'CONFIRMED':
    case 'CANCELLED':
      return 'none';
  }
}
