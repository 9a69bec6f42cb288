import type { RecoveryBackoff } from './options.js';

/** Name of the backoff strategy of recovery jobs, registered on the BullMQ worker. */
export const BACKOFF_TYPE = 'tcc-recovery';

/**
 * Delay before retry `attemptsMade` of a recovery job. A failed attempt's write makes the record
 * due `recoverAfterMs` later (its rest before the next try), so the exponential part (with
 * jitter, so that many failed records do not retry in step) comes on top of that.
 */
export function retryDelay(
  attemptsMade: number,
  recoverAfterMs: number,
  backoff: Required<RecoveryBackoff>,
  random: () => number = Math.random,
): number {
  const exponent = Math.max(0, attemptsMade - 1);
  const exponential = Math.min(backoff.maxDelayMs, backoff.delayMs * 2 ** Math.min(exponent, 30));
  const jittered = exponential * (1 - backoff.jitter * random());
  return Math.ceil(recoverAfterMs + jittered);
}
