import { Worker } from 'bullmq';
import { disconnectBackend } from './disconnect.js';

/**
 * BullMQ's `Worker`, with a way to stop without Redis.
 *
 * BullMQ's graceful `close()` waits for its blocking connection to end, which an ioredis client
 * between reconnection attempts never does, so it does not finish while Redis is away (nor, often,
 * after it is back); and once it has begun, `close(true)` only returns the same promise.
 */
export class RecoveryBullWorker<Data, Result, Name extends string> extends Worker<Data, Result, Name> {
  /**
   * Stops what the worker does by itself and cuts the connections BullMQ made for it, without
   * waiting for Redis: its blocking connection (always its own) and, when `ownsConnection` (it
   * was given connection options), its main one; a client the caller passed is left open. The
   * locks of the jobs it was running are no longer renewed, so once they expire BullMQ's
   * stalled-job check hands those jobs to another worker. A graceful close already under way is
   * left pending.
   */
  abandon(ownsConnection: boolean): void {
    // Lock renewal and the stalled-job check run on timers that would keep the process alive.
    this.lockManager.close().catch(() => {});
    this.pause(true).catch(() => {});
    disconnectBackend(this.getBackend(), ownsConnection);
  }
}
