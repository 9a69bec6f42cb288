import { TccError } from '@tcc/core';

/**
 * A write reached the primary, but fewer replicas than `replicas` acknowledged it within
 * `replicaTimeoutMs` (Redis `WAIT`). Its outcome is unknown rather than failed: the primary
 * applied it and keeps it unless a failover happens before a replica has it. For a commit
 * point the transaction is decided on the primary, and recovery finishes it from there.
 */
export class ReplicationTimeoutError extends TccError {
  readonly xid: string;
  readonly acknowledged: number;
  readonly required: number;
  readonly elapsedMs: number;

  constructor(xid: string, acknowledged: number, required: number, elapsedMs: number, address: string) {
    super(
      'TCC_REPLICATION_TIMEOUT',
      `transaction ${xid}: ${acknowledged} of ${required} replicas acknowledged the commit-point write ` +
        `within ${elapsedMs} ms (WAIT on ${address})`,
    );
    this.xid = xid;
    this.acknowledged = acknowledged;
    this.required = required;
    this.elapsedMs = elapsedMs;
  }
}

/**
 * The key space was written by a newer (or unknown) version of `@tcc/storage-redis`, or with a
 * different layout: this version refuses to read or write it rather than misread it.
 */
export class SchemaVersionError extends TccError {
  readonly key: string;

  constructor(key: string, message: string) {
    super('TCC_SCHEMA_VERSION', message);
    this.key = key;
  }
}
