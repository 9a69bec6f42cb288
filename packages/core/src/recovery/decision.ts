import type { TransactionRecord } from '../storage/record.js';

/**
 * What recovery does next with a record (DESIGN.md §7): `ask` is a branch that tried and heard
 * nothing from its parent past the deadline, which asks the parent for the outcome.
 */
export type RecoveryStep = 'confirm' | 'cancel' | 'fail-try' | 'ask' | 'wait' | 'none';

/**
 * Decides the next step from the record alone, so every driver (the in-process poller, the
 * BullMQ worker, an operator's retry) takes the same decision. `graceMs` (the runtime's
 * `recoverAfterMs`) is how long past the deadline a branch that ended its try waits for its
 * parent's command before it acts on its own.
 */
export function decide(record: TransactionRecord, now: number, graceMs = 0): RecoveryStep {
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
      // Its parent decides; past the deadline a command should have come: ask for the outcome.
      return now < record.deadline + graceMs ? 'wait' : 'ask';
    case 'TRY_FAILED':
      // Its try failed, so its parent cannot have decided confirm: cancel, if no command came.
      return now < record.deadline + graceMs ? 'wait' : 'cancel';
    case 'CONFIRMED':
    case 'CANCELLED':
      return 'none';
  }
}
