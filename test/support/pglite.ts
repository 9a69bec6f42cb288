import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';

/** PGlite in a temporary directory, removed by `close()`. */
export interface PGliteHarness {
  readonly db: PGlite;
  readonly dir: string;
  /** A new, unused table name, so each store gets an empty namespace in the one database. */
  table(): string;
  close(): Promise<void>;
}

export async function openPGlite(): Promise<PGliteHarness> {
  const dir = await mkdtemp(join(tmpdir(), 'tcc-pglite-'));
  const db = await PGlite.create(dir);
  let n = 0;
  return {
    db,
    dir,
    table: () => `tcc_t${n++}`,
    async close() {
      try {
        if (!db.closed) await db.close();
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}
