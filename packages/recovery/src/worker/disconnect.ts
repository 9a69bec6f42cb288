import type { Queue } from 'bullmq';

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
