import { StorageError } from '@tcc/core';
import { makeRecord } from '@tcc/core/testing';
import { SqlStorage } from '@tcc/storage-sql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPGlite, type PGliteHarness } from '../../../test/support/pglite.js';
import { fillParams, literal } from '../src/pglite/sql-literal.js';
import { StatementQueue } from '../src/pglite/statement-queue.js';

let lite: PGliteHarness;

beforeAll(async () => {
  lite = await openPGlite();
});
afterAll(async () => {
  await lite?.close();
});

/** Counts the trips into PGlite's engine (`exec` calls) made while `fn` runs, and keeps their texts. */
async function countingExecs<T>(
  fn: () => Promise<T>,
): Promise<{ result: T; execs: number; texts: string[] }> {
  const exec = lite.db.exec;
  const texts: string[] = [];
  lite.db.exec = ((...args: Parameters<typeof exec>) => {
    texts.push(args[0]);
    return exec.apply(lite.db, args);
  }) as typeof exec;
  try {
    return { result: await fn(), execs: texts.length, texts };
  } finally {
    lite.db.exec = exec;
  }
}

describe('statement literals', () => {
  it('writes strings as escape strings, doubling quotes and backslashes', () => {
    expect(literal("it's")).toBe("E'it''s'");
    expect(literal('a\\b')).toBe("E'a\\\\b'");
    expect(literal(null)).toBe('NULL');
    expect(literal(undefined)).toBe('NULL');
    expect(literal(42)).toBe('42');
    expect(literal(-5)).toBe('(-5)');
    expect(literal(10n)).toBe('10');
    expect(literal(true)).toBe('TRUE');
  });

  it('replaces $10 as a whole, not as $1 followed by 0', () => {
    const literals = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10'];
    expect(fillParams('SELECT $1, $10', literals)).toBe('SELECT 1, 10');
  });

  it('refuses what it cannot write, naming the parameter', () => {
    expect(() => literal('a\0b', '3')).toThrow('statement parameter $3 contains a NUL character');
    expect(() => literal(Number.NaN, '2')).toThrow('statement parameter $2 is NaN');
    expect(() => literal(Number.POSITIVE_INFINITY, '2')).toThrow('statement parameter $2 is Infinity');
    expect(() => literal({}, '1')).toThrow('statement parameter $1 cannot be written as SQL: object');
    expect(() => fillParams('SELECT $2', ['1'])).toThrow('statement parameter $2 has no value');
  });

  it('reads back exactly what was written, whatever the characters', async () => {
    const queue = new StatementQueue(lite.db);
    const nasty = [
      "'; DROP TABLE x; --",
      "back\\slash \\' quote",
      '$1 $$ dollar',
      'line\nbreak\ttab',
      'ünïcödé ✓ 🚀',
      "E'not an escape'",
    ];
    for (const value of nasty) {
      const [row] = await queue.query('t_nasty', 'SELECT $1::text AS v, $2::bigint AS n', [
        value,
        -9_007_199_254_740_991,
      ]);
      expect(row?.v).toBe(value);
      expect(Number(row?.n)).toBe(-9_007_199_254_740_991);
    }
  });
});

describe('statement queue on PGlite', () => {
  it('sends the statements issued in one turn together, each caller getting its own rows', async () => {
    const queue = new StatementQueue(lite.db);
    await queue.query('t_int', 'SELECT $1::int AS n', [0]); // prepares it
    const { result, execs, texts } = await countingExecs(() =>
      Promise.all(Array.from({ length: 20 }, (_, i) => queue.query('t_int', 'SELECT $1::int AS n', [i]))),
    );
    expect(result.map((rows) => rows[0]?.n)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(execs).toBe(1);
    expect(texts[0]).toMatch(/^EXECUTE t_int\(0\);\nEXECUTE t_int\(1\);/);
  });

  it('prepares a statement again after somebody ran DEALLOCATE ALL', async () => {
    const queue = new StatementQueue(lite.db);
    expect(await queue.query('t_again', 'SELECT $1::int + 1 AS n', [1])).toEqual([{ n: 2 }]);
    await lite.db.exec('DEALLOCATE ALL');
    const outcomes = await Promise.all(
      [1, 2, 3].map((i) => queue.query('t_again', 'SELECT $1::int + 1 AS n', [i])),
    );
    expect(outcomes).toEqual([[{ n: 2 }], [{ n: 3 }], [{ n: 4 }]]);
  });

  it('sends a statement that cannot be prepared as text', async () => {
    const queue = new StatementQueue(lite.db);
    const { texts } = await countingExecs(() =>
      queue.query('t_ddl', 'CREATE TABLE prep_fallback (k int DEFAULT $1)', [7]),
    );
    expect(texts).toEqual([
      'PREPARE t_ddl AS CREATE TABLE prep_fallback (k int DEFAULT $1)',
      'CREATE TABLE prep_fallback (k int DEFAULT 7)',
    ]);
    await lite.db.exec('INSERT INTO prep_fallback DEFAULT VALUES');
    expect((await lite.db.query('SELECT k FROM prep_fallback')).rows).toEqual([{ k: 7 }]);
  });

  it('refuses a statement with the wrong number of parameters alone, not its batch', async () => {
    const queue = new StatementQueue(lite.db);
    await queue.query('t_two', 'SELECT $1::int + $2::int AS n', [1, 1]);
    const outcomes = await Promise.allSettled([
      queue.query('t_two', 'SELECT $1::int + $2::int AS n', [1, 2]),
      queue.query('t_two', 'SELECT $1::int + $2::int AS n', [1]),
    ]);
    expect(outcomes[0]).toEqual({ status: 'fulfilled', value: [{ n: 3 }] });
    expect(outcomes[1]).toMatchObject({
      status: 'rejected',
      reason: { message: 'statement t_two takes 2 parameters, got 1' },
    });
  });

  it('keeps a failing statement from taking the others of its batch with it', async () => {
    await lite.db.exec('CREATE TABLE queue_failure (k text PRIMARY KEY)');
    const queue = new StatementQueue(lite.db);
    const outcomes = await Promise.allSettled([
      queue.query('t_insert', 'INSERT INTO queue_failure VALUES ($1) RETURNING k', ['a']),
      queue.query('t_divide', 'SELECT 1 / $1 AS n', [0]),
      queue.query('t_insert', 'INSERT INTO queue_failure VALUES ($1) RETURNING k', ['b']),
    ]);
    expect(outcomes[0]).toEqual({ status: 'fulfilled', value: [{ k: 'a' }] });
    expect(outcomes[1]).toMatchObject({ status: 'rejected', reason: { message: 'division by zero' } });
    expect(outcomes[2]).toEqual({ status: 'fulfilled', value: [{ k: 'b' }] });
    const { rows } = await lite.db.query('SELECT k FROM queue_failure ORDER BY k');
    expect(rows).toEqual([{ k: 'a' }, { k: 'b' }]);
  });

  it('splits more statements than one batch holds over several trips, in order', async () => {
    const queue = new StatementQueue(lite.db);
    await queue.query('t_int', 'SELECT $1::int AS n', [0]);
    const { result, execs } = await countingExecs(() =>
      Promise.all(Array.from({ length: 150 }, (_, i) => queue.query('t_int', 'SELECT $1::int AS n', [i]))),
    );
    expect(result.map((rows) => rows[0]?.n)).toEqual(Array.from({ length: 150 }, (_, i) => i));
    expect(execs).toBe(3);
  });
});

describe('SqlStorage on PGlite, concurrent writes', () => {
  it('writes 50 concurrent creates in a few trips, with each compare-and-set its own', async () => {
    const storage = new SqlStorage({ client: lite.db, table: lite.table() });
    await storage.migrate();
    const records = Array.from({ length: 50 }, () => makeRecord());
    await storage.create(records.pop()!); // prepares the create
    const { execs } = await countingExecs(() => Promise.all(records.map((r) => storage.create(r))));
    expect(execs).toBe(1);
    // One stale version among good ones: only that update fails, the rest land.
    const updates = records.slice(0, 5).map((r, i) => {
      const expected = i === 2 ? 7 : 1;
      return storage.update({ ...r, version: expected + 1, status: 'CONFIRMING' }, expected);
    });
    const outcomes = await Promise.allSettled(updates);
    expect(outcomes.map((o) => o.status)).toEqual([
      'fulfilled',
      'fulfilled',
      'rejected',
      'fulfilled',
      'fulfilled',
    ]);
    expect((outcomes[2] as PromiseRejectedResult).reason).toMatchObject({ code: 'TCC_OPTIMISTIC_LOCK' });
    expect((await storage.get(records[2]!.xid))?.version).toBe(1);
    expect((await storage.get(records[3]!.xid))?.status).toBe('CONFIRMING');
  });

  it('stores attachments with quotes, backslashes and dollars as they are', async () => {
    const storage = new SqlStorage({ client: lite.db, table: lite.table() });
    await storage.migrate();
    const record = makeRecord({
      attachments: { reply: `{"b":"it's \\"quoted\\" \\\\ $1 $$"}`, note: "'); DELETE FROM x; --" },
    });
    await storage.create(record);
    expect(await storage.get(record.xid)).toStrictEqual(record);
  });

  it('refuses a record with a NUL character as a StorageError naming the operation, and writes nothing', async () => {
    const storage = new SqlStorage({ client: lite.db, table: lite.table() });
    await storage.migrate();
    const record = makeRecord({ globalId: 'g\0x' });
    const error = await storage.create(record).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StorageError);
    expect((error as Error).message).toMatch(/SqlStorage\.create .* NUL character/);
    expect(await storage.count({})).toBe(0);
  });
});

describe('SqlStorage on PGlite, vacuum', () => {
  /** Size on disk of a store's table after `cycles` transactions created and removed. */
  async function sizeAfter(vacuumEvery: number, cycles: number): Promise<number> {
    const table = lite.table();
    const storage = new SqlStorage({ client: lite.db, table, vacuumEvery });
    await storage.migrate();
    for (let i = 0; i < cycles; i += 10) {
      const batch = Array.from({ length: 10 }, () => makeRecord());
      await Promise.all(batch.map((r) => storage.create(r)));
      await Promise.all(batch.map((r) => storage.remove(r.xid, 1)));
    }
    // Queued behind the store's VACUUM, if one was started.
    const { rows } = await lite.db.query<{ size: number }>(
      `SELECT pg_relation_size('${table}')::int AS size`,
    );
    return rows[0]!.size;
  }

  it('vacuums its table every vacuumEvery writes, so finished transactions leave no dead rows behind', async () => {
    const never = await sizeAfter(0, 1_000);
    const often = await sizeAfter(100, 1_000);
    // Without it every removed record stays on disk (about 1 KB each).
    expect(never).toBeGreaterThan(500_000);
    expect(often).toBeLessThan(never / 4);
  });

  it.each([
    [-1, '-1'],
    [1.5, '1.5'],
    ['10', '"10"'],
    [Number.NaN, 'NaN'],
  ])('refuses vacuumEvery %s, naming it', (vacuumEvery, shown) => {
    expect(() => new SqlStorage({ client: lite.db, vacuumEvery: vacuumEvery as number })).toThrow(
      `SqlStorage: vacuumEvery must be a non-negative integer, got ${shown}`,
    );
  });
});
