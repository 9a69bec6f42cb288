import { ReplyError } from 'ioredis';
import { COMMAND, type CommandName, runCommand } from './commands.js';
import { holdWritesUntilTickEnd } from './tick-cork.js';
import type { RedisClient } from './topology.js';

/**
 * Most writes one batch script carries. At concurrency 64 a tick holds about that many; a
 * larger tick is sent as several scripts, so that none keeps the server from other clients'
 * commands for long (a write runs ~16 Redis calls).
 */
export const MAX_BATCH_WRITES = 16;

/** The kind of write a batch names for each script (see `batch-n.lua`). */
const KIND: Partial<Record<CommandName, string>> = {
  [COMMAND.create]: 'c',
  [COMMAND.update]: 'u',
  [COMMAND.complete]: 'f',
  [COMMAND.remove]: 'r',
};

interface QueuedWrite {
  readonly name: CommandName;
  /** Its script's KEYS (record hash, bucket prefix), then its ARGV. */
  readonly args: (string | number)[];
  readonly resolve: (reply: unknown) => void;
  readonly reject: (error: unknown) => void;
}

/** The batch of each standalone client, shared by every store on it. */
const batches = new WeakMap<RedisClient, WriteBatch>();

/**
 * The write batch of `client`, or `undefined` for a Cluster: it routes each command to its
 * key's node, and the writes of one tick have keys of many slots.
 */
export function writeBatchOf(client: RedisClient): WriteBatch | undefined {
  if (client.isCluster) return undefined;
  let batch = batches.get(client);
  if (batch === undefined) {
    batch = new WriteBatch(client);
    batches.set(client, batch);
  }
  return batch;
}

/**
 * Sends the writes of one tick on one client as one script (`batch-n.lua`): one command, one
 * reply, one `EVALSHA` for the server to run, instead of one each. Each write still gets its
 * own reply, exactly what its own script would have returned, and runs alone: one that fails
 * (its script raised an error) fails by itself and the others are written.
 *
 * A write waits for the end of the tick it was made in (the microtasks already queued), as
 * the socket cork does; a single write of a tick goes as its own script.
 */
export class WriteBatch {
  readonly #client: RedisClient;
  #queued: QueuedWrite[] = [];

  constructor(client: RedisClient) {
    this.#client = client;
  }

  /** Queues one write script (`name`, its KEYS then ARGV); resolves to that script's reply. */
  add(name: CommandName, args: (string | number)[]): Promise<unknown> {
    return new Promise((resolve, reject) => {
      if (this.#queued.length === 0) process.nextTick(() => this.flush());
      this.#queued.push({ name, args, resolve, reject });
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

  #send(writes: readonly QueuedWrite[]): void {
    if (writes.length === 1) {
      const write = writes[0]!;
      run(this.#client, write.name, write.args).then(write.resolve, write.reject);
      return;
    }
    const keys: (string | number)[] = [];
    const values: (string | number)[] = [];
    for (const { name, args } of writes) {
      keys.push(args[0]!, args[1]!);
      values.push(KIND[name]!);
      for (let i = 2; i < args.length; i++) values.push(args[i]!);
    }
    run(this.#client, COMMAND.batch, [keys.length, ...keys, ...values]).then(
      (replies) => settle(writes, replies),
      (error: unknown) => {
        for (const write of writes) write.reject(error);
      },
    );
  }
}

/** The script's promise; a synchronous throw of the driver as a rejection. */
function run(client: RedisClient, name: CommandName, args: (string | number)[]): Promise<unknown> {
  try {
    return runCommand(client, name, args);
  } catch (error) {
    return Promise.reject(error);
  }
}

/** Hands each write its reply: an integer as its script returns it, a text as the error it raised. */
function settle(writes: readonly QueuedWrite[], replies: unknown): void {
  if (!Array.isArray(replies) || replies.length !== writes.length) {
    const error = new ReplyError(
      `batch of ${writes.length} writes got an unexpected reply (${Array.isArray(replies) ? `${replies.length} replies` : typeof replies})`,
    );
    for (const write of writes) write.reject(error);
    return;
  }
  for (let i = 0; i < writes.length; i++) {
    const reply: unknown = replies[i];
    const write = writes[i]!;
    if (typeof reply === 'number') write.resolve(reply);
    else write.reject(new ReplyError(String(reply)));
  }
}
