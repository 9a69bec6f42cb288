import type { Queue } from 'bullmq';
import { RecoveryOptionError } from '../errors/recovery-option-error.js';
import { checkCloseTimeout, describe } from './options.js';

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
    throw new RecoveryOptionError(`${where}: options must be an object, got ${describe(options)}`);
  }
  const unknown = Object.keys(options).filter((key) => key !== 'timeoutMs');
  if (unknown.length > 0) throw new RecoveryOptionError(`${where}: unknown option ${unknown.join(', ')}`);
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

/** BullMQ's Redis backend: the clients it made, and its own close. */
interface RedisBackend {
  close(force?: boolean): Promise<void>;
  readonly client: Promise<{ disconnect(): void }>;
  readonly blockingClient?: Promise<{ disconnect(): void }> | undefined;
}

/**
 * Closes a backend's connections by force, without waiting for Redis: BullMQ's `close(true)`
 * (ioredis `disconnect()` instead of `QUIT`; a connection on a client the caller passed is left
 * open) and, for a backend whose graceful close had already begun a `QUIT` (which `close(true)`
 * then only waits for), `disconnect()` on the clients BullMQ made: its blocking one always (a
 * duplicate), its main one when `ownsMain` (made from connection options, not the caller's).
 */
export function disconnectBackend(backend: RedisBackend, ownsMain: boolean): void {
  backend.close(true).catch(() => {});
  for (const client of [ownsMain ? backend.client : undefined, backend.blockingClient]) {
    client?.then(
      (c) => c.disconnect(),
      () => {},
    );
  }
}

/**
 * Closes the worker's queue by force. Its connection is BullMQ's only when the worker was given
 * connection options; a client the caller passed is left open (theirs to close), and closing a
 * queue on it only detaches BullMQ's listeners.
 */
export function abandonQueue(queue: Queue, ownsConnection: boolean): void {
  if (ownsConnection) disconnectBackend(queue.getBackend(), true);
  else queue.close().catch(() => {});
}
