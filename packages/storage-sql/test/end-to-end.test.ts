import { describeEndToEnd, describeSingleDriver } from '@tcc/core/testing';
import { SqlStorage } from '@tcc/storage-sql';
import { afterAll, beforeAll } from 'vitest';
import { openPGlite, type PGliteHarness } from '../../../test/support/pglite.js';
import { openPostgres, type PostgresHarness } from '../../../test/support/postgres.js';

let pg: PostgresHarness;
let lite: PGliteHarness;

beforeAll(async () => {
  [pg, lite] = await Promise.all([openPostgres(), openPGlite()]);
});
afterAll(async () => {
  await Promise.all([pg?.end(), lite?.close()]);
});

async function migrated(storage: SqlStorage): Promise<SqlStorage> {
  await storage.migrate();
  return storage;
}

describeEndToEnd('SqlStorage (PostgreSQL)', {
  create: () => migrated(new SqlStorage({ client: pg.pool, schema: pg.schema() })),
});

describeEndToEnd('SqlStorage (PGlite)', {
  create: () => migrated(new SqlStorage({ client: lite.db, table: lite.table() })),
});

describeSingleDriver('SqlStorage (PostgreSQL)', {
  create: () => migrated(new SqlStorage({ client: pg.pool, schema: pg.schema() })),
});
