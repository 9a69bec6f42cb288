/**
 * Redis storage for @tcc/core (DESIGN.md §6): standalone, Sentinel, Cluster and client-side
 * shards, through ioredis.
 */
// Defined in core (every store and the runtime share its meaning); exported here as before.
export { ReplicationTimeoutError } from '@tcc/core/storage';
export { SchemaVersionError } from './errors.js';
export {
  type RedisClient,
  type RedisShard,
  RedisStorage,
  type RedisStorageConnection,
  type RedisStorageOptions,
  type RedisStorageSettings,
  SCHEMA_VERSION,
} from './redis-storage.js';
