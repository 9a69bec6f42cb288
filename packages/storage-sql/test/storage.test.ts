import { randomUUID } from 'node:crypto';
import { CorruptRecordError, InvalidOptionError, StorageError } from '@tcc/core';
import { makeRecord } from '@tcc/core/testing';
import { migrateBarrier, SchemaVersionError, SqlStorage, TCC_SCHEMA_VERSION } from '@tcc/storage-sql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPGlite, type PGliteHarness } from '../../../test/support/pglite.js';
import { openPostgres, type PostgresHarness, pg as pgDriver } from '../../../test/support/postgres.js';

let pg: PostgresHarness;
let lite: PGliteHarness;

beforeAll(async () => {
  [pg, lite] = await Promise.all([openPostgres({ max: 8 }), openPGlite()]);
});
afterAll(async () => {
  await Promise.all([pg?.end(), lite?.close()]);
});

const HOUR = 3_600_000;

describe('migrations', () => {
  it('migrates a fresh PostgreSQL schema, and a second migrate applies nothing', async () => {
    const schema = pg.schema();
    const storage = new SqlStorage({ client: pg.pool, schema });
    expect(await storage.migrate()).toEqual({ from: 0, to: TCC_SCHEMA_VERSION, applied: [1, 2] });
    expect(await storage.migrate()).toEqual({ from: 2, to: TCC_SCHEMA_VERSION, applied: [] });
    const { rows } = await pg.pool.query(
      `SELECT version FROM "${schema}".tcc_transactions_migrations ORDER BY version`,
    );
    expect(rows).toEqual([{ version: 1 }, { version: 2 }]);
    const record = makeRecord();
    await storage.create(record);
    expect(await storage.get(record.xid)).toStrictEqual(record);
  });

  it('migrates a fresh PGlite database, twice', async () => {
    const storage = new SqlStorage({ client: lite.db, table: lite.table() });
    expect((await storage.migrate()).applied).toEqual([1, 2]);
    expect((await storage.migrate()).applied).toEqual([]);
    expect(await storage.count({})).toBe(0);
  });

  it('lets two processes migrate one PostgreSQL schema at once: both succeed, it is applied once', async () => {
    const schema = pg.schema();
    const pools = [pg.newPool(2), pg.newPool(2), pg.newPool(2), pg.newPool(2)];
    const results = await Promise.all(pools.map((client) => new SqlStorage({ client, schema }).migrate()));
    expect(results.flatMap((r) => r.applied).sort()).toEqual([1, 2]);
    const { rows } = await pg.pool.query(
      `SELECT count(*)::int AS n FROM "${schema}".tcc_transactions_migrations`,
    );
    expect(rows[0].n).toBe(2);
  });

  it('lets stores with different tables migrate one new schema at once', async () => {
    const schema = pg.schema();
    const pools = [pg.newPool(2), pg.newPool(2), pg.newPool(2), pg.newPool(2)];
    const results = await Promise.all(
      pools.map((client, i) => new SqlStorage({ client, schema, table: `log_${i}` }).migrate()),
    );
    expect(results.map((r) => r.applied)).toEqual([
      [1, 2],
      [1, 2],
      [1, 2],
      [1, 2],
    ]);
  });

  it('migrates a log after migrateBarrier() created its barrier table', async () => {
    const schema = pg.schema();
    await migrateBarrier(pg.pool, { schema });
    const storage = new SqlStorage({ client: pg.pool, schema });
    expect((await storage.migrate()).applied).toEqual([1, 2]);
    await storage.create(makeRecord());
    expect(await storage.count({})).toBe(1);
  });

  it('keeps the prepared statements of two stores on one pg.Client apart (tables Aa and BB)', async () => {
    const schema = pg.schema();
    const client = new pgDriver.Client({ connectionString: pg.url });
    await client.connect();
    try {
      const stores = ['Aa', 'BB'].map((table) => new SqlStorage({ client, schema, table }));
      for (const store of stores) await store.migrate();
      const records = stores.map(() => makeRecord());
      await Promise.all(stores.map((store, i) => store.create(records[i]!)));
      for (const [i, store] of stores.entries()) {
        expect(await store.get(records[i]!.xid)).toStrictEqual(records[i]);
        expect(await store.get(records[1 - i]!.xid)).toBeUndefined();
      }
    } finally {
      await client.end();
    }
  });

  it('refuses every method before migrate(), saying to call it', async () => {
    const storage = new SqlStorage({ client: pg.pool, schema: pg.schema() });
    const error = await storage.create(makeRecord()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SchemaVersionError);
    expect(error).toMatchObject({
      code: 'TCC_SCHEMA_VERSION',
      found: undefined,
      expected: TCC_SCHEMA_VERSION,
    });
    expect((error as Error).message).toContain('call `await storage.migrate()`');
    await expect(storage.get('x')).rejects.toThrow(/migrate\(\)/);
    await expect(storage.findStuck({ domain: 'd', dueBefore: 1, limit: 1 })).rejects.toThrow(/migrate\(\)/);
    await expect(new SqlStorage({ client: lite.db, table: lite.table() }).count({})).rejects.toThrow(
      /migrate\(\)/,
    );
    await storage.migrate();
    expect(await storage.count({})).toBe(0);
  });

  it('brings a log of schema 1 to 2: its records get dueAt (their updatedAt) and are found when due', async () => {
    const schema = pg.schema();
    const t = `"${schema}".tcc_transactions`;
    // Schema 1 as that release created it, with one record it wrote (no dueAt in its JSON).
    await pg.pool.query(`CREATE SCHEMA "${schema}"`);
    await pg.pool.query(`CREATE TABLE ${t}_migrations (version integer PRIMARY KEY, name text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now())`);
    await pg.pool.query(`INSERT INTO ${t}_migrations (version, name) VALUES (1, 'schema 1')`);
    await pg.pool.query(`CREATE TABLE ${t} (xid text COLLATE "C" PRIMARY KEY, global_id text NOT NULL,
      domain text NOT NULL, type text NOT NULL, status text NOT NULL, version integer NOT NULL,
      retries integer NOT NULL, created_at bigint NOT NULL, updated_at bigint NOT NULL,
      deadline bigint NOT NULL, parked_at bigint, expires_at bigint, claimed_until bigint,
      record text NOT NULL)`);
    await pg.pool.query(`CREATE INDEX tcc_transactions_stuck ON ${t} (domain, updated_at, xid)
      WHERE status IN ('TRYING', 'CONFIRMING', 'CANCELLING') AND parked_at IS NULL`);
    const { dueAt: _dueAt, ...old } = makeRecord({ createdAt: Date.now() - HOUR, status: 'CONFIRMING' });
    await pg.pool.query(
      `INSERT INTO ${t} (xid, global_id, domain, type, status, version, retries, created_at, updated_at,
        deadline, record) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
      [
        old.xid,
        old.globalId,
        old.domain,
        old.type,
        old.status,
        1,
        0,
        old.createdAt,
        old.updatedAt,
        old.deadline,
        JSON.stringify(old),
      ],
    );
    const storage = new SqlStorage({ client: pg.pool, schema });
    await expect(storage.get(old.xid)).rejects.toMatchObject({ code: 'TCC_SCHEMA_VERSION' });
    expect(await storage.migrate()).toEqual({ from: 1, to: 2, applied: [2] });
    expect(await storage.get(old.xid)).toStrictEqual({ ...old, dueAt: old.updatedAt });
    const found = await storage.findStuck({ domain: old.domain, dueBefore: Date.now(), limit: 10 });
    expect(found.records.map((r) => r.xid)).toEqual([old.xid]);
  });

  it('refuses a database at a newer schema version, in every method and in migrate', async () => {
    const schema = pg.schema();
    await new SqlStorage({ client: pg.pool, schema }).migrate();
    await pg.pool.query(
      `INSERT INTO "${schema}".tcc_transactions_migrations (version, name) VALUES (99, 'from the future')`,
    );
    const storage = new SqlStorage({ client: pg.pool, schema });
    const error = await storage.get('x').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SchemaVersionError);
    expect((error as Error).message).toMatch(/schema version 99, newer than the 2 .*upgrade/);
    await expect(storage.migrate()).rejects.toThrow(/schema version 99, newer/);
  });
});

describe('bad input', () => {
  async function migrated(): Promise<{ storage: SqlStorage; schema: string; reports: CorruptRecordError[] }> {
    const schema = pg.schema();
    const reports: CorruptRecordError[] = [];
    const storage = new SqlStorage({ client: pg.pool, schema, onCorrupt: (e) => reports.push(e) });
    await storage.migrate();
    return { storage, schema, reports };
  }

  async function plant(schema: string, xid: string, record: string, updatedAt: number): Promise<void> {
    await pg.pool.query(
      `INSERT INTO "${schema}".tcc_transactions
         (xid, global_id, domain, type, status, version, retries, created_at, updated_at, deadline, due_at, record)
       VALUES ($1, $1, 'test', 'ROOT', 'TRYING', 1, 0, $2, $2, $2, $2, $3)`,
      [xid, updatedAt, record],
    );
  }

  it('refuses a malformed record in create, update and complete, naming the field, and writes nothing', async () => {
    const { storage } = await migrated();
    const good = makeRecord();
    await storage.create(good);
    const cases: [string, () => Promise<void>, RegExp][] = [
      [
        'no record',
        () => storage.create(undefined as never),
        /create: expected a transaction record, got undefined/,
      ],
      [
        'empty xid',
        () => storage.create({ ...makeRecord(), xid: '' }),
        /create: xid must be a non-empty string/,
      ],
      [
        'fractional time',
        () => storage.create(makeRecord({ updatedAt: 1.5 })),
        /create of transaction \S+: updatedAt must be an integer, got 1.5/,
      ],
      [
        'retries as text',
        () => storage.update({ ...good, retries: '1' as never, version: 2 }, 1),
        /update of transaction \S+: retries must be an integer, got "1"/,
      ],
      [
        'no participants',
        () => storage.complete({ ...good, participants: null as never, status: 'CANCELLED', version: 2 }, 1),
        /complete of transaction \S+: participants must be an array/,
      ],
    ];
    for (const [name, call, message] of cases) {
      const error = await call().catch((e: unknown) => e);
      expect(error, name).toBeInstanceOf(StorageError);
      expect((error as Error).message, name).toMatch(message);
    }
    expect(await storage.count({})).toBe(1);
    expect(await storage.get(good.xid)).toStrictEqual(good);
  });

  it('names the key of a corrupt record in get, and findStuck/list skip and report it', async () => {
    const { storage, schema, reports } = await migrated();
    const base = Date.now() - HOUR;
    const good = [makeRecord({ createdAt: base }), makeRecord({ createdAt: base + 3 })];
    await storage.create(good[0]!);
    await storage.create(good[1]!);
    await plant(schema, 'bad-json', '{"xid": "bad-json", oops', base + 1);
    await plant(
      schema,
      'missing-fields',
      JSON.stringify({ xid: 'missing-fields', domain: 'test' }),
      base + 2,
    );

    const error = await storage.get('bad-json').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CorruptRecordError);
    expect(error).toMatchObject({ code: 'TCC_CORRUPT_RECORD', key: 'bad-json' });
    await expect(storage.get('missing-fields')).rejects.toMatchObject({
      key: 'missing-fields',
      message: expect.stringContaining('globalId is missing'),
    });

    // Pages of one: the corrupt rows come back as empty pages whose cursor moves past them.
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await storage.findStuck({
        domain: 'test',
        dueBefore: Date.now(),
        limit: 1,
        ...(cursor === undefined ? {} : { cursor }),
      });
      seen.push(...page.records.map((r) => r.xid));
      cursor = page.cursor;
    } while (cursor !== undefined);
    expect(seen).toEqual(good.map((r) => r.xid));
    expect(reports.map((r) => r.key)).toEqual(['bad-json', 'missing-fields']);

    expect((await storage.list({})).records.map((r) => r.xid)).toEqual(good.map((r) => r.xid));
    expect(await storage.count({})).toBe(4);
  });

  it('reports corrupt records through process.emitWarning by default', async () => {
    const schema = pg.schema();
    const storage = new SqlStorage({ client: pg.pool, schema });
    await storage.migrate();
    await plant(schema, 'broken', 'null', Date.now() - HOUR);
    const warnings: Error[] = [];
    const listener = (warning: Error) => warnings.push(warning);
    process.on('warning', listener);
    try {
      expect((await storage.findStuck({ domain: 'test', dueBefore: Date.now(), limit: 5 })).records).toEqual(
        [],
      );
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('warning', listener);
    }
    expect(warnings.map((w) => w.message)).toEqual([
      'stored transaction record broken is corrupt: not a JSON object',
    ]);
  });

  it('turns a refused connection into a StorageError naming the operation', async () => {
    const pool = new pgDriver.Pool({ connectionString: 'postgres://postgres@127.0.0.1:1/test', max: 1 });
    pool.on('error', () => {});
    try {
      const storage = new SqlStorage({ client: pool });
      const error = await storage.get('x').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StorageError);
      expect(error).toMatchObject({ code: 'TCC_STORAGE' });
      expect((error as Error).message).toMatch(
        /^SqlStorage\.get on "public"\."tcc_transactions" failed: .*ECONNREFUSED/,
      );
      expect((error as Error).cause).toBeInstanceOf(Error);
      await expect(storage.migrate()).rejects.toThrow(/SqlStorage\.migrate .*failed/);
    } finally {
      await pool.end();
    }
  });

  it('takes a fractional or infinite dueBefore in findStuck as the other stores do', async () => {
    const storage = new SqlStorage({ client: pg.pool, schema: pg.schema() });
    await storage.migrate();
    const now = Date.now();
    const record = makeRecord({ domain: 'times', createdAt: now - 10, updatedAt: now - 10 });
    await storage.create(record);
    const stuck = async (dueBefore: number) =>
      (await storage.findStuck({ domain: 'times', dueBefore, limit: 10 })).records.map((r) => r.xid);
    expect(await stuck(now - 9.5)).toEqual([record.xid]);
    expect(await stuck(now - 10)).toEqual([]);
    expect(await stuck(now - 10.5)).toEqual([]);
    expect(await stuck(Number.POSITIVE_INFINITY)).toEqual([record.xid]);
    expect(await stuck(Number.NEGATIVE_INFINITY)).toEqual([]);
    await expect(stuck(Number.NaN)).rejects.toThrow(/dueBefore must be a number, got NaN/);
  });

  it('refuses bad schema and table names, naming the value', () => {
    for (const [options, pattern] of [
      [{ table: 'x"; DROP TABLE y; --' }, /table must be a SQL identifier.*got "x\\"; DROP TABLE y; --"/],
      [{ table: '1abc' }, /table .* got "1abc"/],
      [{ table: 'a'.repeat(49) }, /table .*at most 48 characters/],
      [{ table: '' }, /table .* got ""/],
      [{ schema: 'public.x' }, /schema must be a SQL identifier.*got "public\.x"/],
      [{ schema: 42 }, /schema .* got 42/],
    ] as const) {
      expect(() => new SqlStorage({ client: pg.pool, ...(options as object) })).toThrow(InvalidOptionError);
      expect(() => new SqlStorage({ client: pg.pool, ...(options as object) })).toThrow(pattern);
    }
    expect(() => new SqlStorage({ client: {} as never })).toThrow(
      /client must be a pg\.Pool, a pg\.Client or a PGlite instance, got an object \(Object\)/,
    );
    expect(() => new SqlStorage({ client: 'postgres://x' as never })).toThrow(/got "postgres:\/\/x"/);
  });

  it('keeps names case-sensitive and quoted', async () => {
    const schema = `${pg.schema()}_Mixed`;
    const storage = new SqlStorage({ client: pg.pool, schema, table: 'Tcc_Log' });
    try {
      await storage.migrate();
      const record = makeRecord();
      await storage.create(record);
      expect(await storage.get(record.xid)).toStrictEqual(record);
    } finally {
      await pg.pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    }
  });

  it('rejects every method after close(), which leaves the pool open', async () => {
    const storage = new SqlStorage({ client: pg.pool, schema: pg.schema() });
    await storage.migrate();
    await storage.close();
    await storage.close();
    await expect(storage.get('x')).rejects.toThrow(/SqlStorage\.get: the store is closed/);
    await expect(storage.migrate()).rejects.toThrow(/closed/);
    expect((await pg.pool.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  });
});

describe('concurrency on PostgreSQL (a Pool of 8 connections)', () => {
  it('lets exactly one of 8 writers racing CAS on one record win each round', async () => {
    const storage = new SqlStorage({ client: pg.pool, schema: pg.schema() });
    await storage.migrate();
    let current = makeRecord();
    await storage.create(current);
    for (let round = 0; round < 25; round++) {
      const attempts = Array.from({ length: 8 }, (_, writer) => ({
        ...current,
        version: current.version + 1,
        retries: current.retries + 1,
        attachments: { writer: `${writer}` },
      }));
      const results = await Promise.allSettled(attempts.map((a) => storage.update(a, current.version)));
      const winners = attempts.filter((_, i) => results[i]!.status === 'fulfilled');
      expect(winners, `round ${round}`).toHaveLength(1);
      for (const r of results) {
        if (r.status === 'rejected') {
          expect(r.reason).toMatchObject({
            code: 'TCC_OPTIMISTIC_LOCK',
            message: expect.stringMatching(/found version \d+|does not exist/),
          });
        }
      }
      current = winners[0]!;
      expect(await storage.get(current.xid)).toStrictEqual(current);
    }
    expect(current.version).toBe(26);
  });

  it('serialises a shared pg.Client between the store and its transactions', async () => {
    const client = new pgDriver.Client({ connectionString: pg.url });
    client.on('error', () => {});
    await client.connect();
    try {
      const storage = new SqlStorage({ client, schema: pg.schema() });
      await storage.migrate();
      const records = Array.from({ length: 20 }, () => makeRecord({ xid: randomUUID() }));
      await Promise.all([...records.map((r) => storage.create(r)), storage.migrate()]);
      expect(await storage.count({})).toBe(20);
    } finally {
      await client.end();
    }
  });

  it('replaces an expired tombstone on create and purges the rest', async () => {
    const storage = new SqlStorage({ client: pg.pool, schema: pg.schema() });
    await storage.migrate();
    const expired = Array.from({ length: 5 }, () =>
      makeRecord({ status: 'CANCELLED', type: 'BRANCH', expiresAt: Date.now() - 1 }),
    );
    for (const r of expired) await storage.create(r);
    const again = makeRecord({ xid: expired[0]!.xid });
    await storage.create(again);
    expect(await storage.get(again.xid)).toStrictEqual(again);
    expect(await storage.purgeExpired(2)).toBe(4);
    expect(await storage.count({})).toBe(1);
  });
});

describe('linearizable', () => {
  it('is true on PGlite, whose one process reads what it wrote, and false on a server, whose standby may lag', async () => {
    expect(new SqlStorage({ client: lite.db, table: lite.table() }).linearizable).toBe(true);
    expect(new SqlStorage({ dataDir: '/nonexistent/tcc-linearizable' }).linearizable).toBe(true);
    expect(new SqlStorage({ client: pg.pool, schema: pg.schema() }).linearizable).toBe(false);
    const client = new pgDriver.Client({ connectionString: pg.url });
    expect(new SqlStorage({ client, schema: pg.schema() }).linearizable).toBe(false);
  });
});
