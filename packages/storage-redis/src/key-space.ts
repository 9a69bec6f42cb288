import { bucketOf } from './hashing.js';

/**
 * The keys of one store: `<prefix>meta` (the schema marker) and, per bucket `n`, keys under
 * the hash tag `<prefix>{b<n>}:` so that one bucket's keys share a Cluster slot and one Lua
 * script may touch them all. The KEYS lists of the scripts are built here, in the order each
 * script's header documents.
 */
export class KeySpace {
  readonly prefix: string;
  readonly buckets: number;
  /** The schema marker's key (without the client's `keyPrefix`). */
  readonly meta: string;
  /** `<prefix>{b<n>}:` for every bucket, built once. */
  readonly #bucketPrefixes: readonly string[];

  constructor(prefix: string, buckets: number) {
    this.prefix = prefix;
    this.buckets = buckets;
    this.meta = `${prefix}meta`;
    this.#bucketPrefixes = Array.from({ length: buckets }, (_, n) => `${prefix}{b${n}}:`);
  }

  /** The bucket of an xid: a pure function of the xid and the number of buckets. */
  bucketOf(xid: string): number {
    return bucketOf(xid, this.buckets);
  }

  /** `<prefix>{b<n>}:`, the hash-tagged prefix of a bucket's keys. */
  bucketPrefix(bucket: number): string {
    return this.#bucketPrefixes[bucket]!;
  }

  /** The hash that holds a record. */
  recordKey(bucket: number, xid: string): string {
    return `${this.#bucketPrefixes[bucket]!}tx:${xid}`;
  }

  /** The sorted set of a domain's stuck records in one bucket, scored by `dueAt`. */
  stuckKey(bucket: number, domain: string): string {
    return `${this.#bucketPrefixes[bucket]!}stuck:${domain}`;
  }

  /** The sorted set `list`/`count` walk in one bucket, scored by `createdAt`: all records, or a domain's. */
  createdKey(bucket: number, domain: string | undefined): string {
    const bp = this.#bucketPrefixes[bucket]!;
    return domain === undefined ? `${bp}all` : `${bp}dom:${domain}`;
  }

  /** KEYS of `create`, `update`, `complete` and `remove`: the record's hash and its bucket's prefix. */
  writeKeys(bucket: number, xid: string): string[] {
    const bp = this.#bucketPrefixes[bucket]!;
    return [`${bp}tx:${xid}`, bp];
  }

  /** KEYS of `sweep`: the bucket's prefix. */
  sweepKeys(bucket: number): string[] {
    return [this.#bucketPrefixes[bucket]!];
  }
}
