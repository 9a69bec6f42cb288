import { STUCK_STATUSES, TERMINAL_STATUSES, type TransactionRecord } from '../record.js';

/** Whether a record belongs in the stuck index `findStuck` reads: unfinished and not parked. */
export function isStuck(record: TransactionRecord): boolean {
  return record.parkedAt === undefined && STUCK_STATUSES.has(record.status);
}

/**
 * Whether a record is a tombstone whose `expiresAt` has passed at `now`: reads treat it as
 * gone, whether or not the store has dropped it yet. Only terminal records expire; an
 * `expiresAt` left on a live record means nothing.
 */
export function isExpired(record: TransactionRecord, now: number): boolean {
  return record.expiresAt !== undefined && record.expiresAt <= now && TERMINAL_STATUSES.has(record.status);
}
