import { createHash } from 'node:crypto';
import { Command, type Redis } from 'ioredis';
import { SCRIPTS } from './scripts.js';

let batchScript: { readonly lua: string; readonly sha: string } | undefined;

function script(): { readonly lua: string; readonly sha: string } {
  if (batchScript === undefined) {
    const definition = SCRIPTS.get('batch');
    if (definition === undefined) throw new Error('@tcc/storage-redis: script batch is missing');
    const { lua } = definition;
    batchScript = { lua, sha: createHash('sha1').update(lua).digest('hex') };
  }
  return batchScript;
}

/** Sockets that were sent the batch script's text, so the server has it by its SHA. */
const loadedOn = new WeakSet<object>();

/**
 * `batch-n.lua` as one command, its argument array (all strings) used as given. ioredis's own
 * `Command` copies its arguments with `Array.prototype.flat()`, which V8 runs element by
 * element through its generic path: about 9 µs for a batch of 16 writes (130 arguments,
 * measured on this project's bench machine), a tenth of the client's whole cost of those
 * writes. A batch's arguments are built flat, and as strings, already.
 *
 * As ioredis's `defineCommand` scripts do, the first command on a socket sends the script's
 * text (`EVAL`), which loads it, and the others its SHA (`EVALSHA`): a new connection, or a
 * failover's new server, costs no `NOSCRIPT` round trip (nor shows that error to a client's
 * `reconnectOnError`). A `NOSCRIPT` reply makes its socket send the text again, decided as the
 * reply is read, so that batches refused together are not each sent with the text.
 */
class BatchCommand extends Command {
  constructor(args: string[]) {
    super('evalsha', []);
    this.args = args;
  }

  override toWritable(socket: object): string | Buffer {
    const { lua, sha } = script();
    const reject = this.reject;
    this.reject = (error: Error) => {
      if (error.message.includes('NOSCRIPT')) loadedOn.delete(socket);
      reject.call(this, error);
    };
    if (!loadedOn.has(socket)) {
      loadedOn.add(socket);
      this.name = 'eval';
      this.args[0] = lua;
    } else {
      this.name = 'evalsha';
      this.args[0] = sha;
    }
    return super.toWritable(socket);
  }
}

/**
 * The arguments of `batch-n.lua` after its first (the script or its SHA, set when sent): the
 * key count, every write's KEYS with the client's `keyPrefix` (which ioredis adds only to
 * commands it builds itself), then per write its kind and its ARGV; numbers as decimal text,
 * as ioredis sends them (the store's are safe integers).
 */
export function batchArguments(
  writes: readonly { readonly kind: string; readonly args: readonly (string | number)[] }[],
  keyPrefix: string,
): string[] {
  const args = ['', String(2 * writes.length)];
  for (const { args: own } of writes) args.push(keyPrefix + own[0]!, keyPrefix + own[1]!);
  for (const { kind, args: own } of writes) {
    args.push(kind);
    for (let i = 2; i < own.length; i++) args.push(String(own[i]!));
  }
  return args;
}

/**
 * Runs `batch-n.lua` with `args` (from {@link batchArguments}); sent again, as `EVAL`, if the
 * server lost the script since it was loaded on this socket (`NOSCRIPT`: `SCRIPT FLUSH`, or a
 * restart behind the same connection). The reply is the script's.
 */
export function runBatchScript(client: Redis, args: string[]): Promise<unknown> {
  return send(client, new BatchCommand(args)).catch((error: unknown) => {
    if (!(error instanceof Error) || !error.message.includes('NOSCRIPT')) throw error;
    // The first command is settled: its arguments are free to be sent again.
    return send(client, new BatchCommand(args));
  });
}

function send(client: Redis, command: Command): Promise<unknown> {
  client.sendCommand(command);
  return command.promise;
}
