import { MemoryStorage, type TransactionStorage } from '@tcc/core';

/**
 * The one place the demo chooses its transaction log. MemoryStorage needs no server and no
 * files; it forgets everything on exit, which a demo that finishes every transaction accepts.
 * Async because a durable store (PGlite, Redis) has to open before it can be used.
 */
export async function openStorage(): Promise<TransactionStorage> {
  return new MemoryStorage();
}
