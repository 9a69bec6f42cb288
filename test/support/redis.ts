import { randomBytes } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';

/** The machine's Redis (DESIGN.md §9); `REDIS_URL` overrides. */
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

export const HOW_TO_START_REDIS =
  'start it with `redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no` ' +
  '(or set REDIS_URL to a running server)';

/** Client options a test may set (the reply mapping stays ioredis's default, "legacy"). */
export type ClientOptions = Omit<RedisOptions, 'replyMapping'>;

/** Options that make a test client fail fast instead of waiting for a server that is not there. */
export const FAIL_FAST: ClientOptions = { maxRetriesPerRequest: 1, connectTimeout: 2_000 };

/** The machine's Redis for one test file: a unique key prefix, and only its own keys deleted. */
export interface RedisHarness {
  readonly url: string;
  /** A connected client, quit by `end()`. */
  readonly client: Redis;
  /** The prefix of every key this file writes, e.g. `tcc-test:1234:ab12cd:`. */
  readonly base: string;
  /** A new, unused key prefix under `base` (for one store). */
  prefix(): string;
  /** Another connected client of its own, quit by `end()`. */
  newClient(options?: ClientOptions): Promise<Redis>;
  /** Deletes every key under `prefix` (SCAN, in cleanup only). */
  clear(prefix: string): Promise<number>;
  /** Deletes this file's keys and quits the clients. */
  end(): Promise<void>;
}

/**
 * Connects to the machine's Redis. A missing server is a failure whose message says how to
 * start it, never a skip.
 */
export async function openRedis(): Promise<RedisHarness> {
  const clients: Redis[] = [];
  const newClient = async (options: ClientOptions = {}) => {
    const client = new Redis(REDIS_URL, { ...FAIL_FAST, lazyConnect: true, ...options });
    client.on('error', () => {}); // reported through the failing command instead
    clients.push(client);
    try {
      await client.connect();
      await client.ping();
    } catch (error) {
      client.disconnect();
      throw new Error(
        `Redis is not reachable at ${REDIS_URL} (${(error as Error).message}): ${HOW_TO_START_REDIS}`,
        {
          cause: error,
        },
      );
    }
    return client;
  };
  const client = await newClient();
  const base = `tcc-test:${process.pid}:${randomBytes(3).toString('hex')}:`;
  let n = 0;
  return {
    url: REDIS_URL,
    client,
    base,
    prefix: () => `${base}${n++}:`,
    newClient,
    clear: (prefix) => deleteByPrefix(client, prefix),
    async end() {
      try {
        await deleteByPrefix(client, base);
      } finally {
        for (const c of clients) c.disconnect();
      }
    },
  };
}

/** Deletes the keys under `prefix` on one server, by SCAN (cleanup only, never in the store). */
export async function deleteByPrefix(client: Redis, prefix: string): Promise<number> {
  const pattern = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1_000);
    cursor = next;
    if (keys.length > 0) deleted += await client.unlink(...keys);
  } while (cursor !== '0');
  return deleted;
}
