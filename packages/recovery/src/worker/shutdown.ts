import { InvalidOptionError } from '@tcc/core';
import { describeValue } from '@tcc/core/storage';
import type { Queue } from 'bullmq';
import { abandonQueue } from './disconnect.js';
import { checkCloseTimeout } from './options.js';

/**
 * How {@link RecoveryWorker.close} ended:
 * - `drained`: the running jobs finished and BullMQ closed its connections;
 * - `forced`: the wait ran out (typically Redis was unreachable) or the graceful close failed,
 *   and the connections BullMQ made were disconnected. Jobs that were running come back to a
 *   worker through BullMQ's stalled-job check once their lock expires (`lockDurationMs`).
 */
export type CloseOutcome = 'drained' | 'forced';

/** Options of {@link RecoveryWorker.close}. */
export interface RecoveryCloseOptions {
  /**
   * How long to wait for the running jobs and a graceful close before closing by force (ms).
   * Default: the worker's `closeTimeoutMs` (10,000). `0` closes by force at once; `Infinity`
   * waits as long as it takes.
   */
  timeoutMs?: number;
}

/** The timeout of one `close(options)` call, `fallback` when it names none. */
export function closeTimeoutOf(options: unknown, fallback: number): number {
  const where = 'RecoveryWorker.close';
  if (options === undefined) return fallback;
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new InvalidOptionError(`${where}: options must be an object, got ${describeValue(options)}`);
  }
  const unknown = Object.keys(options).filter((key) => key !== 'timeoutMs');
  if (unknown.length > 0) throw new InvalidOptionError(`${where}: unknown option ${unknown.join(', ')}`);
  const { timeoutMs } = options as RecoveryCloseOptions;
  return timeoutMs === undefined ? fallback : checkCloseTimeout(timeoutMs, `${where}: timeoutMs`);
}

/**
 * When a close stops waiting. Each `close()` call adds its own deadline and the earliest one
 * wins, so a second call with a shorter timeout (e.g. `{ timeoutMs: 0 }` on a second signal)
 * cuts a long wait short.
 */
export class CloseDeadline {
  readonly reached: Promise<void>;
  #reach!: () => void;
  readonly #timers = new Set<NodeJS.Timeout>();

  constructor() {
    this.reached = new Promise((resolve) => {
      this.#reach = resolve;
    });
  }

  after(timeoutMs: number): void {
    if (timeoutMs === Number.POSITIVE_INFINITY) return;
    if (timeoutMs === 0) {
      this.#reach();
      return;
    }
    this.#timers.add(setTimeout(this.#reach, timeoutMs));
  }

  dispose(): void {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
  }
}

/** What a recovery worker made on BullMQ, to close. */
export interface BullmqParts {
  /** The worker, see {@link RecoveryBullWorker}. */
  readonly worker: { close(): Promise<void>; abandon(ownsConnection: boolean): void } | undefined;
  readonly queue: Queue | undefined;
  /** True when BullMQ made every connection (the worker was given connection options, not a client). */
  readonly ownsConnection: boolean;
}

/**
 * Closes the worker, then the queue, gracefully, unless `deadline` comes first or the graceful
 * close fails (reported to `onError`): then by force, without waiting for Redis.
 */
export async function closeBullmq(
  parts: BullmqParts,
  deadline: CloseDeadline,
  onError: (error: Error) => void,
): Promise<CloseOutcome> {
  const { worker, queue, ownsConnection } = parts;
  const graceful = (async (): Promise<CloseOutcome> => {
    await worker?.close();
    await queue?.close();
    return 'drained';
  })();
  let outcome: CloseOutcome;
  try {
    outcome = await Promise.race([graceful, deadline.reached.then((): CloseOutcome => 'forced')]);
  } catch (error) {
    onError(error instanceof Error ? error : new Error(String(error)));
    outcome = 'forced';
  }
  deadline.dispose();
  if (outcome === 'forced') {
    worker?.abandon(ownsConnection);
    if (queue !== undefined) abandonQueue(queue, ownsConnection);
  }
  return outcome;
}
