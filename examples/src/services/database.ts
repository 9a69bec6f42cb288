import { basename } from 'node:path';
import type { PGlite } from '@electric-sql/pglite';
import { MemoryStorage, type TransactionStorage } from '@tcc/core';
import { RedisStorage } from '@tcc/storage-redis';
import { openPGlite, SqlStorage } from '@tcc/storage-sql';
import { Redis } from 'ioredis';

/** SQL statements this process has sent to its PGlite (BEGIN and COMMIT counted), for `GET /stats`. */
export const statementCount = { total: 0 };

/**
 * One service's embedded PostgreSQL (PGlite in a local directory): its transaction log and
 * its business tables, which survive the process being killed. One process per directory.
 */
export async function openDatabase(dir: string): Promise<{ db: PGlite; storage: TransactionStorage }> {
  // Locked for this process: a second process opening the directory would destroy it.
  const db = await openPGlite(dir);
  countStatements(db);
  // `SHOP_LOG=memory`: the transaction log in memory (not durable!), for the benchmark to
  // show what the log's writes cost next to the transport's calls.
  if (process.env.SHOP_LOG === 'memory') return { db, storage: new MemoryStorage() };
  // `SHOP_LOG=redis`: the log in Redis (`REDIS_URL`), under `SHOP_REDIS_PREFIX` and this
  // service's directory name; the business tables stay in PGlite.
  if (process.env.SHOP_LOG === 'redis') {
    // Auto-pipelining: the writes of concurrent transactions share round trips and syscalls.
    const client = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', {
      maxRetriesPerRequest: 3,
      enableAutoPipelining: true,
    });
    const prefix = `${process.env.SHOP_REDIS_PREFIX ?? 'tcc-shop:'}${basename(dir)}:`;
    const storage = new RedisStorage({ client, prefix });
    await storage.migrate();
    return { db, storage };
  }
  const storage = new SqlStorage({ client: db });
  await storage.migrate();
  return { db, storage };
}

/** Counts every statement sent through `db` (the log's and the business's alike). */
function countStatements(db: PGlite): void {
  const query = db.query.bind(db);
  const exec = db.exec.bind(db);
  const transaction = db.transaction.bind(db);
  db.query = ((...args: Parameters<PGlite['query']>) => {
    statementCount.total++;
    return query(...args);
  }) as PGlite['query'];
  db.exec = ((...args: Parameters<PGlite['exec']>) => {
    statementCount.total++;
    return exec(...args);
  }) as PGlite['exec'];
  db.transaction = (<T>(fn: Parameters<PGlite['transaction']>[0]) => {
    statementCount.total += 2; // BEGIN, COMMIT (or ROLLBACK)
    return transaction((tx) => {
      const txQuery = tx.query.bind(tx);
      tx.query = ((...args: Parameters<typeof tx.query>) => {
        statementCount.total++;
        return txQuery(...args);
      }) as typeof tx.query;
      return fn(tx) as Promise<T>;
    });
  }) as PGlite['transaction'];
}
