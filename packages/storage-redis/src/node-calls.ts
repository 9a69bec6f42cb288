import { ReplicationTimeoutError } from '@tcc/core/storage';
import { COMMAND, type CommandName, runCommand } from './commands.js';
import { wrapError } from './driver-errors.js';
import type { SchemaMarker } from './schema-marker.js';
import { holdWritesUntilTickEnd } from './tick-cork.js';
import type { RedisNode } from './topology.js';
import { flushWrites, type ReplicaWait, type WaitedReply, writeBatchOf } from './write-batch.js';

/**
 * Runs the store's calls on its nodes: after the node's schema check, with driver failures
 * turned into errors that name the operation and the address; the writes of one tick on a
 * standalone client batched into one script, followed by one `WAIT` when the store requires
 * replicas.
 */
export class NodeCalls {
  readonly #marker: SchemaMarker;
  /** The `WAIT` after each write (or batch of writes); `undefined` without replicas. */
  readonly #wait: ReplicaWait | undefined;

  constructor(marker: SchemaMarker, replicas: number, replicaTimeoutMs: number) {
    this.#marker = marker;
    this.#wait = replicas === 0 ? undefined : { replicas, timeoutMs: replicaTimeoutMs };
  }

  /**
   * Runs one Redis call on `node`, after the writes queued on it (so that a read made after a
   * write sees it). `key`, where the call reads one record, turns a `WRONGTYPE` reply into the
   * `CorruptRecordError` of that key: something else was written there.
   */
  call<T>(
    operation: string,
    node: RedisNode,
    xid: string | undefined,
    run: () => Promise<T>,
    key?: string,
  ): Promise<T> {
    return this.#checked(operation, node, xid, afterQueuedWrites(node, run), key);
  }

  /** Runs one script on `node`: its KEYS, then its ARGV. */
  script(operation: string, node: RedisNode, name: CommandName, args: (string | number)[]): Promise<unknown> {
    return this.call(operation, node, undefined, () => runCommand(node.client, name, args));
  }

  /**
   * One write script (batched with the others of its tick on a standalone client); with
   * `replicas`, followed by `WAIT` once it has answered, so that it resolves only once enough
   * replicas have it. Every write needs that, not only the commit point: a lost create
   * or enlisting update would leave a try's effects with no record to cancel them, a lost
   * empty-rollback tombstone would let a hanging try through.
   *
   * @throws {ReplicationTimeoutError} if the write was applied but too few replicas acknowledged it.
   */
  write(
    operation: string,
    node: RedisNode,
    xid: string,
    name: CommandName,
    args: (string | number)[],
  ): Promise<unknown> {
    // Not async: an async function returning the call's promise would add a promise and two
    // microtasks to every write.
    const wait = this.#wait;
    const batch = writeBatchOf(node.client, wait);
    if (wait === undefined) {
      if (batch !== undefined)
        return this.#afterCheck(node, () => batch.add(name, args, { operation, node, xid }));
      return this.call(operation, node, xid, () => runCommand(node.client, name, args));
    }
    const started = performance.now();
    const waited =
      batch !== undefined
        ? this.#afterCheck(node, () => batch.addWaited(name, args, { operation, node, xid }))
        : this.#writeAndWait(operation, node, xid, name, args, wait);
    return waited.then((written) => replicated(operation, node, xid, name, written, wait, started));
  }

  /**
   * `run` after the node's schema check, at once when the node was checked. A batched write
   * calls it bare: the batch names its failures itself, which saves each write a promise (and
   * the async hooks of `AsyncLocalStorage` on it).
   */
  #afterCheck<T>(node: RedisNode, run: () => Promise<T>): Promise<T> {
    return this.#marker.isChecked(node) ? run() : this.#marker.check(node).then(run);
  }

  /** `run` after the node's schema check, its failure wrapped. */
  #checked<T>(
    operation: string,
    node: RedisNode,
    xid: string | undefined,
    run: () => Promise<T>,
    key: string | undefined,
  ): Promise<T> {
    // Not async: on the hot path (marker checked) the driver's promise is passed on with one
    // rejection handler, no extra promise and microtask per call.
    return this.#afterCheck(node, () => send(operation, node, xid, run, key));
  }

  /**
   * One script, then its `WAIT` on the node of its key (a Cluster's): the `WAIT` is pipelined
   * behind an `EXISTS` of the record's key, which routes it there. Not behind the script
   * itself: a script the server lost (NOSCRIPT) is sent again by ioredis on its own, after a
   * `WAIT` already queued had counted the replicas.
   */
  async #writeAndWait(
    operation: string,
    node: RedisNode,
    xid: string,
    name: CommandName,
    args: (string | number)[],
    { replicas, timeoutMs }: ReplicaWait,
  ): Promise<WaitedReply> {
    const reply = await this.call(operation, node, xid, () => runCommand(node.client, name, args));
    const replies = await this.call(operation, node, xid, () =>
      node.client
        .pipeline([
          ['exists', args[0]!],
          ['wait', replicas, timeoutMs],
        ])
        .exec(),
    );
    const [, [waitError, acknowledged] = [null, undefined]] = replies ?? [];
    return { reply, acknowledged, waitError };
  }
}

/**
 * The reply of a write that waited for replicas.
 *
 * @throws {ReplicationTimeoutError} if the write was applied but too few replicas acknowledged it.
 */
function replicated(
  operation: string,
  node: RedisNode,
  xid: string,
  name: CommandName,
  { reply, acknowledged, waitError }: WaitedReply,
  { replicas }: ReplicaWait,
  started: number,
): unknown {
  // Nothing was written to wait for: a lost compare-and-set, or a create of a stored xid.
  if (reply !== (name === COMMAND.create ? 1 : 0)) return reply;
  if (waitError) throw wrapError(`${operation} (WAIT)`, node, xid, waitError);
  const count = Number(acknowledged);
  if (!(count >= replicas)) {
    const elapsed = Math.round(performance.now() - started);
    throw new ReplicationTimeoutError(xid, count, replicas, elapsed, `WAIT on ${node.address}`);
  }
  return reply;
}

/** `run`, once the writes queued on the node's client have been sent. */
function afterQueuedWrites<T>(node: RedisNode, run: () => Promise<T>): () => Promise<T> {
  return () => {
    flushWrites(node.client);
    return run();
  };
}

/** Runs `run` with the node's writes held to the end of the tick, its failure wrapped. */
function send<T>(
  operation: string,
  node: RedisNode,
  xid: string | undefined,
  run: () => Promise<T>,
  key: string | undefined,
): Promise<T> {
  holdWritesUntilTickEnd(node.client);
  let pending: Promise<T>;
  try {
    pending = run();
  } catch (error) {
    return Promise.reject(wrapError(operation, node, xid, error, key));
  }
  return pending.catch((error: unknown) => {
    throw wrapError(operation, node, xid, error, key);
  });
}
