import { SCRIPTS } from './scripts.js';
import type { RedisClient } from './topology.js';

/**
 * Names under which the scripts of `src/commands` are defined on the clients. One namespace
 * per script version: two versions of this package sharing a client each run their own.
 * `batch` is used on a client with `enableAutoPipelining` only: elsewhere `batch-script.ts`
 * sends `batch-n.lua` itself.
 */
export const COMMAND = {
  create: 'tccStorageCreateV2',
  update: 'tccStorageUpdateV2',
  complete: 'tccStorageCompleteV2',
  remove: 'tccStorageRemoveV2',
  batch: 'tccStorageBatchV1',
  sweep: 'tccStorageSweepV2',
  range: 'tccStorageRangeV1',
} as const;

export type CommandName = (typeof COMMAND)[keyof typeof COMMAND];

/**
 * Defines every script on `client` (ioredis `defineCommand`: `EVALSHA`, loading the script
 * on a `NOSCRIPT` reply), once per client even when several stores share it.
 */
export function defineCommands(client: RedisClient): void {
  const target = client as unknown as Record<string, unknown>;
  for (const [name, commandName] of Object.entries(COMMAND)) {
    if (typeof target[commandName] === 'function') continue;
    const definition = SCRIPTS.get(name);
    if (definition === undefined) throw new Error(`@tcc/storage-redis: script ${name} is missing`);
    const { numberOfKeys, lua } = definition;
    // No count: the caller passes it first (a batch of writes names two keys per write).
    client.defineCommand(commandName, numberOfKeys === null ? { lua } : { numberOfKeys, lua });
  }
}

/** Runs a script defined by {@link defineCommands}: its KEYS first, then its ARGV. */
export function runCommand(
  client: RedisClient,
  name: CommandName,
  args: (string | number)[],
): Promise<unknown> {
  return (client as unknown as Record<string, (...args: (string | number)[]) => Promise<unknown>>)[name]!(
    ...args,
  );
}
