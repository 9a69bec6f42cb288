import { describeValue, InvalidOptionError } from '@tcc/core/storage';
import type { Cluster, Redis } from 'ioredis';
import { fnv1a, rendezvous } from './hashing.js';

/** An ioredis client `RedisStorage` can use: a `Redis` (standalone or Sentinel-managed) or a `Cluster`. */
export type RedisClient = Redis | Cluster;

/**
 * One shard of a client-side sharded store. `id` names the shard in the rendezvous hash: keep
 * it stable when the shard moves to another address, or its records are looked for elsewhere.
 */
export interface RedisShard {
  readonly id: string;
  readonly client: Redis;
}

/**
 * Where `RedisStorage` keeps its records:
 * - `{ client }`: one ioredis `Redis` (standalone, or Sentinel-managed through its `sentinels`
 *   option) or one `Cluster`;
 * - `{ clients }`: standalone clients for client-side sharding. Each xid belongs to one shard
 *   by rendezvous hashing of the xid; a bare client's shard id is its `host:port`.
 */
export type RedisStorageConnection =
  | { readonly client: RedisClient }
  | { readonly clients: ReadonlyArray<Redis | RedisShard> };

/** One client of the store: the single client, or one shard. */
export interface RedisNode {
  readonly id: string;
  readonly client: RedisClient;
  /** Where it connects, for messages. */
  readonly address: string;
  /** ioredis `keyPrefix` of the client, shown in the keys named by errors. */
  readonly keyPrefix: string;
  /** Hash of `id`, the shard's weight seed in the rendezvous hash. */
  readonly seed: number;
}

/** The clients of a store and which of them holds an xid. */
export class Topology {
  readonly nodes: readonly RedisNode[];
  readonly #seeds: readonly number[];

  /**
   * @param where names the caller in messages, e.g. `new RedisStorage`.
   * @throws {InvalidOptionError} naming the bad client or shard.
   */
  constructor(connection: RedisStorageConnection, where: string) {
    this.nodes = resolveNodes(connection, where);
    this.#seeds = this.nodes.map((n) => n.seed);
  }

  /** The node that holds `xid`'s record: a pure function of the xid and the shard ids. */
  nodeOf(xid: string): RedisNode {
    return this.nodes[rendezvous(xid, this.#seeds)]!;
  }
}

function resolveNodes(connection: RedisStorageConnection, where: string): RedisNode[] {
  if ('client' in connection) {
    const { client } = connection;
    if (!isClient(client)) {
      throw new InvalidOptionError(
        `${where}: client must be an ioredis Redis or Cluster, got ${describeValue(client)}`,
      );
    }
    return [makeNode(addressOf(client), client)];
  }
  if (!('clients' in connection) || !Array.isArray(connection.clients)) {
    throw new InvalidOptionError(
      `${where}: expected { client } or { clients: [...] }, got ${describeValue(connection)}`,
    );
  }
  const { clients } = connection;
  if (clients.length === 0) throw new InvalidOptionError(`${where}: clients must not be empty`);
  const nodes: RedisNode[] = [];
  const ids = new Map<string, number>();
  clients.forEach((entry, i) => {
    const shard: RedisShard | undefined = isClient(entry)
      ? { id: addressOf(entry), client: entry as Redis }
      : entry !== null && typeof entry === 'object' && 'client' in entry && isClient(entry.client)
        ? entry
        : undefined;
    if (shard === undefined) {
      throw new InvalidOptionError(
        `${where}: clients[${i}] must be an ioredis Redis or { id, client }, got ${describeValue(entry)}`,
      );
    }
    if (shard.client.isCluster) {
      throw new InvalidOptionError(
        `${where}: clients[${i}] is a Cluster; pass a Cluster as { client } (it shards by itself)`,
      );
    }
    if (typeof shard.id !== 'string' || shard.id === '') {
      throw new InvalidOptionError(
        `${where}: clients[${i}].id must be a non-empty string, got ${describeValue(shard.id)}`,
      );
    }
    const seen = ids.get(shard.id);
    if (seen !== undefined) {
      throw new InvalidOptionError(
        `${where}: clients[${seen}] and clients[${i}] have the same shard id ${JSON.stringify(shard.id)}; ` +
          'give each shard its own { id, client }',
      );
    }
    ids.set(shard.id, i);
    nodes.push(makeNode(shard.id, shard.client, addressOf(shard.client)));
  });
  const seeds = new Set(nodes.map((n) => n.seed));
  if (seeds.size !== nodes.length) {
    throw new InvalidOptionError(
      `${where}: two shard ids hash alike; rename one of ${[...ids.keys()].join(', ')}`,
    );
  }
  return nodes;
}

function makeNode(id: string, client: RedisClient, address = id): RedisNode {
  const keyPrefix = (client.options as { keyPrefix?: string }).keyPrefix ?? '';
  return { id, client, address, keyPrefix, seed: fnv1a(id) };
}

function isClient(value: unknown): value is RedisClient {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof (value as { defineCommand?: unknown }).defineCommand === 'function' &&
    typeof (value as { isCluster?: unknown }).isCluster === 'boolean'
  );
}

/** A client's address for messages and default shard ids. */
function addressOf(client: RedisClient): string {
  if (client.isCluster) {
    const nodes = (client as unknown as { startupNodes?: unknown[] }).startupNodes ?? [];
    const list = nodes.map((n) =>
      typeof n === 'object' && n !== null
        ? `${(n as { host?: string }).host ?? 'localhost'}:${(n as { port?: number }).port ?? 6379}`
        : String(n),
    );
    return `cluster ${list.join(',')}`;
  }
  const options = (client as Redis).options;
  if (options.sentinels && options.sentinels.length > 0) {
    const sentinels = options.sentinels.map((s) => `${s.host ?? 'localhost'}:${s.port ?? 26379}`);
    return `sentinel master ${JSON.stringify(options.name ?? '')} via ${sentinels.join(',')}`;
  }
  if (options.path) return options.path;
  return `${options.host ?? 'localhost'}:${options.port ?? 6379}`;
}
