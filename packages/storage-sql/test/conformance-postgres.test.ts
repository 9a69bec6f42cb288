import { describeStorageConformance } from '@tcc/core/testing';
import { SqlStorage } from '@tcc/storage-sql';
import { afterAll, beforeAll } from 'vitest';
import { openPostgres, type PostgresHarness } from '../../../test/support/postgres.js';

let pg: PostgresHarness;
const schemaOf = new WeakMap<object, string>();

beforeAll(async () => {
  pg = await openPostgres({ max: 10 });
});
afterAll(async () => {
  await pg?.end();
});

// Each test gets a schema of its own, migrated from nothing, and dropped after it.
describeStorageConformance('SqlStorage on PostgreSQL', {
  async create() {
    const schema = pg.schema();
    const storage = new SqlStorage({ client: pg.pool, schema });
    await storage.migrate();
    schemaOf.set(storage, schema);
    return storage;
  },
  async destroy(storage) {
    const schema = schemaOf.get(storage);
    if (schema !== undefined) await pg.drop(schema);
  },
});
