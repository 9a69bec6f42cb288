/**
 * Redis storage for @tcc/core (DESIGN.md §6): standalone, Sentinel, Cluster and client-side
 * shards, through ioredis.
 */
// Defined in core (every store and the runtime share their meaning); exported here as before.
export { ReplicationTimeoutError, SchemaVersionError } from '@tcc/core/storage';
export type { RedisStorageOptions, RedisStorageSettings } from './options.js';
export { RedisStorage } from './redis-storage.js';
export { SCHEMA_VERSION } from './schema-marker.js';
export type { RedisClient, RedisShard, RedisStorageConnection } from './topology.js';
