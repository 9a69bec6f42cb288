import { Redis } from 'ioredis';
import pg from 'pg';

/** The machine's PostgreSQL, or `DATABASE_URL`. */
export const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
/** The machine's Redis, or `REDIS_URL`. */
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/**
 * A pool of `max` connections and a fresh, empty schema of its own; an unreachable server is
 * one clear error instead of a driver's stack.
 */
export async function openSchema(max: number, schema: string): Promise<pg.Pool> {
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max });
  pool.on('error', () => {}); // a dropped idle connection shows up in the next query instead
  try {
    await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  } catch (error) {
    await pool.end();
    throw new Error(
      `PostgreSQL is not reachable at ${DATABASE_URL} (${(error as Error).message}): start it or set DATABASE_URL`,
    );
  }
  await pool.query(`CREATE SCHEMA ${schema}`);
  return pool;
}

/** Deletes the keys a run wrote under `prefix` on a shared server (cleanup only: SCAN is fine). */
export async function deleteKeys(client: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    if (keys.length > 0) await client.del(...keys);
    cursor = next;
  } while (cursor !== '0');
}

/** {@link deleteKeys} with a client of its own, on `REDIS_URL`. */
export async function deleteRedisKeys(prefix: string): Promise<void> {
  const client = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  try {
    await deleteKeys(client, prefix);
  } finally {
    client.disconnect();
  }
}
