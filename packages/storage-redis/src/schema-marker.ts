import { SchemaVersionError } from '@tcc/core/storage';
import { wrapError } from './driver-errors.js';
import type { KeySpace } from './key-space.js';
import type { RedisNode } from './topology.js';

/** Version of the key layout this package reads and writes. */
export const SCHEMA_VERSION = 1;

/**
 * The schema marker `<prefix>meta`, `{"schema":1,"buckets":16}` on every node: written where
 * it is missing, and checked once per node before the store's first call there, so that a key
 * space laid out by another version, or with another number of buckets, is refused instead of
 * misread. A check that could not reach the node is repeated by the next call.
 */
export class SchemaMarker {
  readonly #keys: KeySpace;
  readonly #wanted: string;
  readonly #checked = new Set<RedisNode>();
  readonly #pending = new Map<RedisNode, Promise<void>>();

  constructor(keys: KeySpace) {
    this.#keys = keys;
    this.#wanted = JSON.stringify({ schema: SCHEMA_VERSION, buckets: keys.buckets });
  }

  /** Whether `node` passed the check: calls test this first to skip a promise on the hot path. */
  isChecked(node: RedisNode): boolean {
    return this.#checked.has(node);
  }

  /**
   * Checks (once) the marker of `node`, writing it if missing.
   *
   * @throws {SchemaVersionError} if the marker is foreign or says another version or layout.
   * @throws {StorageError} if the node could not be reached.
   */
  check(node: RedisNode): Promise<void> {
    if (this.#checked.has(node)) return Promise.resolve();
    let pending = this.#pending.get(node);
    if (pending === undefined) {
      pending = this.#read(node).then(
        () => {
          this.#checked.add(node);
          this.#pending.delete(node);
        },
        (error: unknown) => {
          this.#pending.delete(node);
          throw error;
        },
      );
      this.#pending.set(node, pending);
    }
    return pending;
  }

  /** {@link check} of every node, one after the other. */
  async checkAll(nodes: readonly RedisNode[]): Promise<void> {
    for (const node of nodes) if (!this.#checked.has(node)) await this.check(node);
  }

  async #read(node: RedisNode): Promise<void> {
    const key = this.#keys.meta;
    let stored: string | null;
    try {
      stored = await node.client.get(key);
      if (stored === null) {
        await node.client.set(key, this.#wanted, 'NX');
        stored = await node.client.get(key);
      }
    } catch (error) {
      throw wrapError('schema check', node, undefined, error);
    }
    this.#verify(node, stored ?? this.#wanted);
  }

  #verify(node: RedisNode, stored: string): void {
    const key = `${node.keyPrefix}${this.#keys.meta}`;
    let marker: unknown;
    try {
      marker = JSON.parse(stored);
    } catch {
      // reported below
    }
    const schema = (marker as { schema?: unknown } | null)?.schema;
    const buckets = (marker as { buckets?: unknown } | null)?.buckets;
    const expected = SCHEMA_VERSION;
    if (typeof schema !== 'number' || typeof buckets !== 'number') {
      throw new SchemaVersionError(
        `${key} on ${node.address} is not a @tcc/storage-redis schema marker (${JSON.stringify(stored.slice(0, 100))}): ` +
          'refusing to use this key space; choose another prefix',
        { key, found: typeof schema === 'number' ? schema : undefined, expected },
      );
    }
    if (schema !== expected) {
      throw new SchemaVersionError(
        `${key} on ${node.address} says schema version ${schema}, but this @tcc/storage-redis reads and writes ` +
          `version ${expected}: ${schema > expected ? 'upgrade @tcc/storage-redis' : 'migrate the data'} ` +
          'before running it on this key space',
        { key, found: schema, expected },
      );
    }
    if (buckets !== this.#keys.buckets) {
      throw new SchemaVersionError(
        `${key} on ${node.address} was written with buckets: ${buckets}, but this store was given buckets: ` +
          `${this.#keys.buckets}; records would be looked for in the wrong keys, so give it buckets: ${buckets}`,
        { key, found: schema, expected },
      );
    }
  }
}
