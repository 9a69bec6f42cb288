import { type Clock, systemClock } from '../base/clock.js';
import { writeNextVersion } from '../storage/kit/next-version.js';
import type { TransactionRecord } from '../storage/record.js';
import type { TransactionStorage } from '../storage/transaction-storage.js';

/**
 * The one rule for giving a record up to an operator: its attempts, counted in `retries`, have
 * reached `maxRetries`. Every attempt is counted by compare-and-set before it runs, so attempts
 * of a driver that crashed count too.
 */
export function isExhausted(record: TransactionRecord, maxRetries: number): boolean {
  return record.retries >= maxRetries;
}

/**
 * Marks a working copy parked: it keeps its status and leaves the stuck index (no scan or pass
 * takes it up) until an operator acts. `reason` becomes its `lastError` unless the failure that
 * brought it here already said why.
 */
export function markParked(record: TransactionRecord, now: number, reason: string): void {
  record.parkedAt = now;
  record.lastError ??= reason;
}

/**
 * Parks the record `xid` if its attempts reached `maxRetries`, for a recovery driver whose limit
 * is its own (the BullMQ worker's `maxRetries`); the runtime parks at `recovery.maxRetries` in
 * the write that records the failed attempt. `error` is the failure of the last attempt.
 *
 * Resolves `true` if the record is parked now (by this call or before), `false` if it has
 * attempts left, is gone, is claimed by a driver at work on it, or another process changed it
 * first.
 */
export async function parkIfExhausted(
  storage: TransactionStorage,
  xid: string,
  maxRetries: number,
  error: unknown,
  clock: Clock = systemClock,
): Promise<boolean> {
  const record = await storage.get(xid);
  if (record === undefined) return false;
  if (record.parkedAt !== undefined) return true;
  if (!isExhausted(record, maxRetries)) return false;
  const now = clock.now();
  // Another driver took it up since this attempt failed: it is being worked on, not given up.
  if (record.claim !== undefined && record.claim.until > now) return false;
  const parked = await writeNextVersion(storage, record, (next) =>
    markParked(next, now, error instanceof Error ? error.message : String(error)),
  );
  return parked !== undefined;
}
