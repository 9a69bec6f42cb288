import { CorruptRecordError, StorageError, TccError } from '@tcc/core/storage';
import type { RedisNode } from './topology.js';

/** A driver failure as a `StorageError` naming the operation and the address; errors of ours pass through. */
export function wrapError(
  operation: string,
  node: RedisNode,
  xid: string | undefined,
  error: unknown,
  key?: string,
): Error {
  if (error instanceof TccError) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (key !== undefined && message.startsWith('WRONGTYPE')) {
    return new CorruptRecordError(`${node.keyPrefix}${key}`, `not a hash (${message})`, { cause: error });
  }
  const what = xid === undefined ? operation : `${operation} of transaction ${xid}`;
  return new StorageError(`redis ${what} on ${node.address} failed: ${message}`, { cause: error });
}
