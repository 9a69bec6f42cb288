import { InvalidOptionError } from '@tcc/core';
import { describeValue } from '@tcc/core/storage';
import type { Cluster, Redis } from 'ioredis';
import type { RecoveryConnection } from './options.js';

const WHERE = 'new RecoveryWorker';

/** True for an ioredis client (standalone or Cluster) rather than options for one. */
export function isClient(connection: RecoveryConnection): connection is Redis | Cluster {
  return typeof (connection as { duplicate?: unknown }).duplicate === 'function';
}

function isCluster(connection: Redis | Cluster): connection is Cluster {
  return (connection as { isCluster?: boolean }).isCluster === true;
}

/**
 * Refuses, before BullMQ sees it, a connection its blocking worker commands cannot use: a client
 * that gives up on a command after `maxRetriesPerRequest` retries (ioredis's default is 20) drops
 * the worker's `BZPOPMIN` whenever Redis is briefly away. Also refuses a Cluster with a prefix
 * that has no hash tag: BullMQ's scripts touch several keys, which must share a slot.
 */
export function checkConnection(connection: RecoveryConnection, prefix: string): void {
  if (connection === null || typeof connection !== 'object') {
    throw new InvalidOptionError(
      `${WHERE}: connection must be an ioredis Redis or Cluster, or Redis options, got ${describeValue(connection)}`,
    );
  }
  if (!isClient(connection)) {
    const retries = (connection as { maxRetriesPerRequest?: unknown }).maxRetriesPerRequest;
    if (retries !== undefined && retries !== null) {
      throw new InvalidOptionError(
        `${WHERE}: connection options must have maxRetriesPerRequest: null (BullMQ's blocking commands need it), got ${describeValue(retries)}`,
      );
    }
    return;
  }
  const cluster = isCluster(connection);
  const options = cluster ? (connection.options.redisOptions ?? {}) : (connection as Redis).options;
  if (options.maxRetriesPerRequest !== null) {
    throw new InvalidOptionError(
      `${WHERE}: the ioredis ${cluster ? 'Cluster (redisOptions)' : 'client'} must be created with maxRetriesPerRequest: null ` +
        `(BullMQ's blocking commands need it), got ${describeValue(options.maxRetriesPerRequest)}. ` +
        `E.g. new Redis(url, { maxRetriesPerRequest: null })`,
    );
  }
  if (options.keyPrefix) {
    throw new InvalidOptionError(
      `${WHERE}: the ioredis client has keyPrefix ${describeValue(options.keyPrefix)}; BullMQ cannot use it, set the worker's prefix instead`,
    );
  }
  if (cluster && !/\{[^{}]+\}/.test(prefix)) {
    throw new InvalidOptionError(
      `${WHERE}: on Redis Cluster the prefix must contain a hash tag such as "{tcc}", got ${describeValue(prefix)}`,
    );
  }
}
