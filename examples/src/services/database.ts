import { mkdir } from 'node:fs/promises';
import { PGlite } from '@electric-sql/pglite';
import { MemoryStorage, type TransactionStorage } from '@tcc/core';
import { SqlStorage } from '@tcc/storage-sql';

/**
 * One service's embedded PostgreSQL (PGlite in a local directory): its transaction log and
 * its business tables, which survive the process being killed. One process per directory.
 */
export async function openDatabase(dir: string): Promise<{ db: PGlite; storage: TransactionStorage }> {
  await mkdir(dir, { recursive: true });
  const db = await PGlite.create(dir);
  // `SHOP_LOG=memory`: the transaction log in memory (not durable!), for the benchmark to
  // show what the log's writes cost next to the transport's calls.
  if (process.env.SHOP_LOG === 'memory') return { db, storage: new MemoryStorage() };
  const storage = new SqlStorage({ client: db });
  await storage.migrate();
  return { db, storage };
}
