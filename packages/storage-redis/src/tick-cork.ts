import type { Redis } from 'ioredis';
import type { RedisClient } from './topology.js';

/** Sockets corked until the end of the current tick. */
const corked = new WeakSet<object>();

/**
 * Holds back what a standalone client writes until the current tick ends, so that the
 * commands of every transaction that resumed in this turn of the event loop leave in one
 * socket write: at concurrency 64 that is one system call and one packet for many commands
 * on this side, and one read for many on the server's, instead of one each. Replies and
 * their order are the same; a command waits at most for the microtasks already queued.
 *
 * A Cluster keeps its connections to itself (and routes each command), so it is left as it is.
 */
export function holdWritesUntilTickEnd(client: RedisClient): void {
  if (client.isCluster) return;
  const { stream, status } = client as Redis;
  // Before `ready` ioredis queues commands itself; a socket without cork is written as it is.
  if (status !== 'ready' || stream === undefined || corked.has(stream)) return;
  if (typeof stream.cork !== 'function') return;
  corked.add(stream);
  stream.cork();
  process.nextTick(release, stream);
}

function release(stream: Redis['stream']): void {
  corked.delete(stream);
  stream.uncork();
}
