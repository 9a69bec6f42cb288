import { type Redis, ReplyError } from 'ioredis';
import { batchArguments, runBatchScript } from './batch-script.js';
import { COMMAND, type CommandName, runCommand } from './commands.js';
import { wrapError } from './driver-errors.js';
import { holdWritesUntilTickEnd } from './tick-cork.js';
import type { RedisClient, RedisNode } from './topology.js';

/**
 * Most writes one batch script carries; a tick with more sends several. Small batches keep
 * the client and the server busy at once: the server reads a connection 16 KB at a time and
 * answers what it read, so the client handles the first replies while the server runs the
 * next scripts. One script for all 64 writes of a tick at concurrency 64 left each side idle
 * while the other worked (22,000 transactions a second against 41,000 for batches of 16, on
 * the store's writes alone; batches of 8 and 32 did about as well as 16).
 */
export const MAX_BATCH_WRITES = 16;

/** The kind of write a batch names for each script (see `batch-n.lua`). */
const KIND: Partial<Record<CommandName, string>> = {
  [COMMAND.create]: 'c',
  [COMMAND.update]: 'u',
  [COMMAND.complete]: 'f',
  [COMMAND.remove]: 'r',
};

/** The `WAIT` that follows each batch of a store that requires replicas. */
export interface ReplicaWait {
  readonly replicas: number;
  readonly timeoutMs: number;
}

/** A write's reply, and what the `WAIT` sent after its batch answered. */
export interface WaitedReply {
  readonly reply: unknown;
  /** How many replicas acknowledged, as `WAIT` replied (`undefined` if it failed). */
  readonly acknowledged: unknown;
  /** Why `WAIT` failed, or `null`. */
  readonly waitError: Error | null;
}

/** Where a write comes from, named by its failure: the store's operation, the node, the transaction. */
export interface WriteOrigin {
  readonly operation: string;
  readonly node: RedisNode;
  readonly xid: string;
}

interface QueuedWrite {
  readonly name: CommandName;
  /** `name` as the batch script knows it. */
  readonly kind: string;
  /** Its script's KEYS (record hash, bucket prefix), then its ARGV. */
  readonly args: (string | number)[];
  readonly origin: WriteOrigin;
  readonly settle: (reply: unknown, acknowledged: unknown, waitError: Error | null) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * The batches of each standalone client, by the `WAIT` they send (`undefined`: none). Stores
 * without replicas on one client share a batch; a store with replicas has its own.
 */
const batches = new WeakMap<RedisClient, Map<ReplicaWait | undefined, WriteBatch>>();

/**
 * The write batch of `client` for a store that waits for `wait` (or for none), `undefined` for
 * a Cluster: it routes each command to its key's node, and the writes of one tick have keys of
 * many slots.
 */
export function writeBatchOf(client: RedisClient, wait?: ReplicaWait): WriteBatch | undefined {
  if (client.isCluster) return undefined;
  let byWait = batches.get(client);
  if (byWait === undefined) {
    byWait = new Map();
    batches.set(client, byWait);
  }
  let batch = byWait.get(wait);
  if (batch === undefined) {
    batch = new WriteBatch(client, wait);
    byWait.set(wait, batch);
  }
  return batch;
}

/** Sends what is queued on every batch of `client` (before a call that is not a write). */
export function flushWrites(client: RedisClient): void {
  const byWait = batches.get(client);
  if (byWait !== undefined) for (const batch of byWait.values()) batch.flush();
}

/**
 * Sends the writes of one tick on one client as one script (`batch-n.lua`): one command, one
 * reply, one `EVALSHA` for the server to run, instead of one each. Each write still gets its
 * own reply, exactly what its own script would have returned, and runs alone: one that fails
 * (its script raised an error) fails by itself and the others are written. With `wait`, each
 * script is followed by one `WAIT` for all of its writes.
 *
 * A write waits for the end of the tick it was made in (the microtasks already queued), as
 * the socket cork does; a single write of a tick goes as its own script.
 */
export class WriteBatch {
  readonly #client: RedisClient;
  readonly #wait: ReplicaWait | undefined;
  #queued: QueuedWrite[] = [];

  constructor(client: RedisClient, wait: ReplicaWait | undefined) {
    this.#client = client;
    this.#wait = wait;
  }

  /**
   * Queues one write script (`name`, its KEYS then ARGV); resolves to that script's reply, or
   * rejects with the driver's failure as a `StorageError` naming `origin`.
   */
  add(name: CommandName, args: (string | number)[], origin: WriteOrigin): Promise<unknown> {
    return new Promise((resolve, reject) =>
      this.#queue({ name, kind: KIND[name]!, args, origin, settle: resolve, reject }),
    );
  }

  /** As {@link add}, on a batch that waits for replicas: the reply and what `WAIT` said. */
  addWaited(name: CommandName, args: (string | number)[], origin: WriteOrigin): Promise<WaitedReply> {
    return new Promise((resolve, reject) => {
      const settle = (reply: unknown, acknowledged: unknown, waitError: Error | null) =>
        resolve({ reply, acknowledged, waitError });
      this.#queue({ name, kind: KIND[name]!, args, origin, settle, reject });
    });
  }

  /**
   * Sends what is queued now. A call that is not a write flushes first, so that the client's
   * commands still reach the server in the order they were made.
   */
  flush(): void {
    const queued = this.#queued;
    if (queued.length === 0) return;
    this.#queued = [];
    // Several scripts of one flush still leave in one socket write.
    holdWritesUntilTickEnd(this.#client);
    for (let start = 0; start < queued.length; start += MAX_BATCH_WRITES) {
      this.#send(queued.length <= MAX_BATCH_WRITES ? queued : queued.slice(start, start + MAX_BATCH_WRITES));
    }
  }

  #queue(write: QueuedWrite): void {
    if (this.#queued.length === 0) process.nextTick(() => this.flush());
    this.#queued.push(write);
  }

  #send(writes: readonly QueuedWrite[]): void {
    const single = writes.length === 1;
    const client = this.#client as Redis;
    const wait = this.#wait;
    // A lone write's reply is its script's; a batch's is one reply per write.
    const deliver = (reply: unknown, acknowledged: unknown, waitError: Error | null) =>
      settle(writes, single ? [reply] : reply, acknowledged, waitError);
    promised(() => this.#script(writes)).then(
      (reply) => {
        if (wait === undefined) return deliver(reply, undefined, null);
        // `WAIT` once the script has answered, not pipelined behind it: a script the server
        // lost (NOSCRIPT) is sent again on its own (by ioredis, or `runBatchScript`), and a
        // `WAIT` already queued would count the replicas before that second send was applied.
        // One `WAIT` for all the script's writes.
        return promised(() => client.wait(wait.replicas, wait.timeoutMs)).then(
          (acknowledged) => deliver(reply, acknowledged, null),
          (error: Error) => deliver(reply, undefined, error),
        );
      },
      (error: unknown) => rejectAll(writes, error),
    );
  }

  /** Sends the script of `writes`: a lone write's own, or a batch. */
  #script(writes: readonly QueuedWrite[]): Promise<unknown> {
    const client = this.#client as Redis;
    if (writes.length === 1) return runCommand(client, writes[0]!.name, writes[0]!.args);
    // On an auto-pipelining client, into its pipeline (sent at `setImmediate`), behind the
    // commands already queued there: a read made before these writes still runs before them.
    // ioredis then puts the script's SHA first and the client's keyPrefix on the keys.
    if (client.options.enableAutoPipelining) {
      return runCommand(client, COMMAND.batch, batchArguments(writes, '').slice(1));
    }
    return runBatchScript(client, batchArguments(writes, client.options.keyPrefix ?? ''));
  }
}

/** `call()`'s promise; a synchronous throw of the driver as a rejection. */
function promised<T>(call: () => Promise<T>): Promise<T> {
  try {
    return call();
  } catch (error) {
    return Promise.reject(error);
  }
}

function rejectAll(writes: readonly QueuedWrite[], error: unknown): void {
  for (const write of writes) fail(write, error);
}

function fail(write: QueuedWrite, error: unknown): void {
  const { operation, node, xid } = write.origin;
  write.reject(wrapError(operation, node, xid, error));
}

/** Hands each write its reply: an integer as its script returns it, a text as the error it raised. */
function settle(
  writes: readonly QueuedWrite[],
  replies: unknown,
  acknowledged: unknown,
  waitError: Error | null,
): void {
  if (!Array.isArray(replies) || replies.length !== writes.length) {
    const got = Array.isArray(replies) ? `${replies.length} replies` : typeof replies;
    rejectAll(writes, new ReplyError(`batch of ${writes.length} writes got an unexpected reply (${got})`));
    return;
  }
  for (let i = 0; i < writes.length; i++) {
    const reply: unknown = replies[i];
    const write = writes[i]!;
    if (typeof reply === 'number') write.settle(reply, acknowledged, waitError);
    else fail(write, new ReplyError(String(reply)));
  }
}
