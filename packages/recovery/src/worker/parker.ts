import { OptimisticLockError, type TransactionStorage } from '@tcc/core';

/**
 * Parks a record whose failed attempts reached `maxRetries`: it keeps its status, gets `parkedAt`
 * and `lastError`, and leaves the stuck index (so no scan enqueues it) until an operator acts.
 * The count is the record's `retries`, which every attempt increments by compare-and-set before
 * it runs, so attempts of a worker that was killed count too.
 *
 * Resolves `true` if the record is parked now (by this call or before), `false` if it has
 * attempts left, is gone, is claimed by a driver at work, or another process changed it first.
 */
export async function parkIfExhausted(
  storage: TransactionStorage,
  xid: string,
  maxRetries: number,
  error: unknown,
): Promise<boolean> {
  const record = await storage.get(xid);
  if (record === undefined) return false;
  if (record.parkedAt !== undefined) return true;
  if (record.retries < maxRetries) return false;
  // Another driver took it up since this attempt failed: it is being worked on, not given up.
  if (record.claim !== undefined && record.claim.until > Date.now()) return false;
  const expected = record.version;
  const now = Date.now();
  record.version = expected + 1;
  record.parkedAt = now;
  record.lastError ??= error instanceof Error ? error.message : String(error);
  // updatedAt is left as it was: parking is not a step that leases the record.
  try {
    await storage.update(record, expected);
    return true;
  } catch (failure) {
    if (failure instanceof OptimisticLockError) return false;
    throw failure;
  }
}
