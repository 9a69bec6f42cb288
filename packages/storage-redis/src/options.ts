import {
  type CorruptRecordError,
  type CorruptRecordHandler,
  corruptRecordHandler,
  describeValue,
  InvalidOptionError,
} from '@tcc/core/storage';
import type { RedisStorageConnection } from './topology.js';

/** Settings of {@link RedisStorage}, next to its connection. */
export interface RedisStorageSettings {
  /**
   * Prefix of every key this store writes (default `tcc:`). Stores with different prefixes
   * share a server without seeing each other. Must not contain `{` or `}` (hash tags).
   */
  prefix?: string;
  /**
   * Replicas that must acknowledge every write before it resolves, through Redis `WAIT`
   * pipelined with the write (default 0: do not wait). With fewer acknowledgements within
   * `replicaTimeoutMs` the write rejects with `ReplicationTimeoutError`.
   */
  replicas?: number;
  /** How long `WAIT` waits for `replicas` acknowledgements, in ms (default 1000). */
  replicaTimeoutMs?: number;
  /**
   * Number of hash-tagged buckets the keys are spread over (default 16). Redis Cluster places
   * each bucket in one slot, so more buckets spread the indexes over more nodes; `findStuck`
   * and `list` read every bucket. Fixed for a key space: it is recorded in the schema marker
   * and a store opened with another value refuses to run.
   */
  buckets?: number;
  /**
   * Called for a stored record that cannot be read back, which `findStuck` and `list` skip
   * (`get` throws the error instead). Default: `process.emitWarning`.
   */
  onCorrupt?: (error: CorruptRecordError) => void;
}

/** What `new RedisStorage(...)` takes: the connection (`client` or `clients`) and settings. */
export type RedisStorageOptions = RedisStorageConnection & RedisStorageSettings;

/** The settings checked, with their defaults filled in. */
export interface ResolvedSettings {
  readonly prefix: string;
  readonly buckets: number;
  readonly replicas: number;
  readonly replicaTimeoutMs: number;
  readonly onCorrupt: CorruptRecordHandler;
}

const DEFAULT_PREFIX = 'tcc:';
const DEFAULT_BUCKETS = 16;
/** Redis Cluster's slot count: more buckets could not be spread any further. */
const MAX_BUCKETS = 16_384;
const DEFAULT_REPLICA_TIMEOUT_MS = 1_000;

/**
 * Checks the settings of `options` (the connection is the topology's) and fills in defaults.
 *
 * @param where names the caller in messages, e.g. `new RedisStorage`.
 * @throws {InvalidOptionError} naming the bad value.
 */
export function resolveSettings(options: unknown, where: string): ResolvedSettings {
  if (options === null || typeof options !== 'object') {
    throw new InvalidOptionError(
      `${where}: expected { client } or { clients }, got ${describeValue(options)}`,
    );
  }
  const {
    prefix = DEFAULT_PREFIX,
    buckets = DEFAULT_BUCKETS,
    replicas = 0,
    replicaTimeoutMs = DEFAULT_REPLICA_TIMEOUT_MS,
    onCorrupt,
  } = options as RedisStorageSettings;
  if (typeof prefix !== 'string' || /[{}]/.test(prefix)) {
    throw new InvalidOptionError(
      `${where}: prefix must be a string without "{" or "}" (hash tags are the store's), got ${describeValue(prefix)}`,
    );
  }
  if (typeof buckets !== 'number' || !Number.isInteger(buckets) || buckets < 1 || buckets > MAX_BUCKETS) {
    throw new InvalidOptionError(
      `${where}: buckets must be an integer from 1 to ${MAX_BUCKETS}, got ${describeValue(buckets)}`,
    );
  }
  if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 0) {
    throw new InvalidOptionError(
      `${where}: replicas must be a non-negative integer, got ${describeValue(replicas)}`,
    );
  }
  if (typeof replicaTimeoutMs !== 'number' || !Number.isInteger(replicaTimeoutMs) || replicaTimeoutMs < 1) {
    throw new InvalidOptionError(
      `${where}: replicaTimeoutMs must be a positive integer, got ${describeValue(replicaTimeoutMs)}`,
    );
  }
  return {
    prefix,
    buckets,
    replicas,
    replicaTimeoutMs,
    onCorrupt: corruptRecordHandler(onCorrupt, where),
  };
}
