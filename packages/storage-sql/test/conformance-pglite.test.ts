import { describeStorageConformance } from '@tcc/core/testing';
import { SqlStorage } from '@tcc/storage-sql';
import { afterAll, beforeAll } from 'vitest';
import { openPGlite, type PGliteHarness } from '../../../test/support/pglite.js';

let lite: PGliteHarness;
const tableOf = new WeakMap<object, string>();

beforeAll(async () => {
  lite = await openPGlite();
});
afterAll(async () => {
  await lite?.close();
});

// One PGlite in a temporary directory; each test gets tables of its own, dropped after it.
describeStorageConformance('SqlStorage on PGlite', {
  async create() {
    const table = lite.table();
    const storage = new SqlStorage({ client: lite.db, table });
    await storage.migrate();
    tableOf.set(storage, table);
    return storage;
  },
  async destroy(storage) {
    const table = tableOf.get(storage);
    if (table === undefined) return;
    await lite.db.exec(`DROP TABLE IF EXISTS "${table}", "${table}_migrations", "${table}_barrier" CASCADE`);
  },
});
