import { requireNonNegativeInteger, requireObject, requirePositiveInteger } from '../base/checks.js';
import type { RecoveryResult } from './recoverer.js';

/** Tuning of recovery, shared by `tcc.recover`, `tcc.startRecovery` and the BullMQ worker. */
export interface RecoveryOptions {
  /** Attempts before a record is parked for an operator. Default 30. */
  maxRetries?: number;
  /**
   * Length of a driver's claim on a record (renewed while it works), so also how soon recovery
   * takes over what a crashed process was driving, how long a failed confirm or cancel rests
   * before it is retried, and how long past its deadline a branch waits for its parent's
   * command before it asks for the outcome (ms). Default 30,000. 0 turns claims off: for tests
   * that drive records from several runtimes by hand, never for production.
   */
  recoverAfterMs?: number;
  /** Pause between passes of `startRecovery` (ms). Default 10,000. */
  intervalMs?: number;
  /** Records read per `findStuck` page. Default 100. */
  batchSize?: number;
  /** Records `startRecovery` recovers at once (each under its own claim). Default 16. */
  concurrency?: number;
}

/**
 * Options of the in-process poller. `recoverAfterMs` is not among them: it is also the claim a
 * writer holds on a record, so it is set once, on the `Tcc`, for every driver alike.
 */
export interface StartRecoveryOptions
  extends Pick<RecoveryOptions, 'intervalMs' | 'batchSize' | 'concurrency'> {
  /** Called with the result of every attempt (e.g. to log parked records). */
  onResult?: (result: RecoveryResult) => void;
  /** Called when a pass fails (e.g. the store is unreachable). Default: `console.error`. */
  onError?: (error: unknown) => void;
}

/** Recovery options with their defaults, checked; `where` names their owner in messages. */
export function resolveRecovery(
  options: RecoveryOptions | undefined,
  where: string,
): Required<RecoveryOptions> {
  if (options !== undefined) requireObject(options, where);
  const o = options ?? {};
  return {
    maxRetries: requirePositiveInteger(o.maxRetries ?? 30, `${where}.maxRetries`),
    recoverAfterMs: requireNonNegativeInteger(o.recoverAfterMs ?? 30_000, `${where}.recoverAfterMs`),
    intervalMs: requirePositiveInteger(o.intervalMs ?? 10_000, `${where}.intervalMs`),
    batchSize: requirePositiveInteger(o.batchSize ?? 100, `${where}.batchSize`),
    concurrency: requirePositiveInteger(o.concurrency ?? 16, `${where}.concurrency`),
  };
}
