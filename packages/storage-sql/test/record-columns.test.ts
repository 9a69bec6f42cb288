import { CorruptRecordError, OptimisticLockError } from '@tcc/core';
import { makeRecord } from '@tcc/core/testing';
import { type SqlClientInput, SqlStorage } from '@tcc/storage-sql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPGlite, type PGliteHarness } from '../../../test/support/pglite.js';
import { openPostgres, type PostgresHarness } from '../../../test/support/postgres.js';

// The row's `version` and `status` columns are what writes compare-and-set on and scans filter
// on; the `record` JSON is what reads return. A row whose columns disagree with its JSON (a
// hand-made fix, a restore gone wrong) must be reported, not handed out as a record no write can
// ever match (recovery would see `busy` for ever).

let pg: PostgresHarness;
let lite: PGliteHarness;

beforeAll(async () => {
  [pg, lite] = await Promise.all([openPostgres(), openPGlite()]);
});
afterAll(async () => {
  await Promise.all([pg?.end(), lite?.close()]);
});

interface Target {
  client: SqlClientInput;
  where: { schema?: string; table?: string };
  table: string;
  sql(text: string, params: unknown[]): Promise<unknown[]>;
}

describe.each<[string, () => Target]>([
  [
    'PostgreSQL',
    () => {
      const schema = pg.schema();
      return {
        client: pg.pool,
        where: { schema },
        table: `"${schema}".tcc_transactions`,
        sql: async (text, params) => (await pg.pool.query(text, params)).rows,
      };
    },
  ],
  [
    'PGlite',
    () => {
      const table = lite.table();
      return {
        client: lite.db,
        where: { table },
        table: `"${table}"`,
        sql: async (text, params) => (await lite.db.query(text, params)).rows,
      };
    },
  ],
])('columns that disagree with the record JSON on %s', (_name, target) => {
  async function setup() {
    const t = target();
    const reports: CorruptRecordError[] = [];
    const storage = new SqlStorage({ client: t.client, ...t.where, onCorrupt: (e) => reports.push(e) });
    await storage.migrate();
    const intact = makeRecord({ createdAt: 1 });
    const record = makeRecord({ createdAt: 2 });
    await storage.create(intact);
    await storage.create(record);
    const json = async () =>
      (
        (await t.sql(`SELECT record FROM ${t.table} WHERE xid = $1`, [record.xid])) as { record: string }[]
      )[0]!.record;
    return { t, storage, reports, intact, record, json };
  }

  it('a version column ahead of the JSON: get throws CorruptRecordError, list reports it, writes change nothing', async () => {
    const { t, storage, reports, intact, record, json } = await setup();
    await t.sql(`UPDATE ${t.table} SET version = version + 4 WHERE xid = $1`, [record.xid]);
    const before = await json();

    const error = await storage.get(record.xid).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CorruptRecordError);
    expect(error).toMatchObject({
      code: 'TCC_CORRUPT_RECORD',
      key: record.xid,
      message: expect.stringContaining("version column 5 differs from the record's version 1"),
    });
    expect((await storage.list({})).records).toEqual([intact]);
    expect(reports.map((r) => r.key)).toEqual([record.xid]);
    await expect(storage.update({ ...record, version: 2, status: 'CONFIRMING' }, 1)).rejects.toBeInstanceOf(
      OptimisticLockError,
    );
    expect(await json()).toBe(before);
    expect(await storage.get(intact.xid)).toEqual(intact);
  });

  it('a status column other than the JSON status: get throws CorruptRecordError naming both', async () => {
    const { t, storage, reports, intact, record, json } = await setup();
    await t.sql(`UPDATE ${t.table} SET status = 'CONFIRMING' WHERE xid = $1`, [record.xid]);
    const before = await json();

    await expect(storage.get(record.xid)).rejects.toMatchObject({
      code: 'TCC_CORRUPT_RECORD',
      key: record.xid,
      message: expect.stringContaining(
        'status column "CONFIRMING" differs from the record\'s status "TRYING"',
      ),
    });
    expect((await storage.list({ status: 'CONFIRMING' })).records).toEqual([]);
    expect((await storage.list({})).records).toEqual([intact]);
    expect(reports.map((r) => r.key)).toEqual([record.xid, record.xid]);
    expect(await json()).toBe(before);
  });

  it('reads an intact record, before and after a write, without complaint', async () => {
    const { storage, reports, record } = await setup();
    expect(await storage.get(record.xid)).toEqual(record);
    const next = { ...record, version: 2, status: 'CONFIRMING' as const, updatedAt: record.updatedAt + 1 };
    await storage.update(next, 1);
    expect(await storage.get(record.xid)).toEqual(next);
    expect(reports).toEqual([]);
  });
});
