import { PGlite } from '@electric-sql/pglite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BadParameterError, PreparedStatements } from '../../examples/src/services/prepared.js';

// The shop's wallets run their business statements through this: on a real (in-memory) PGlite.
describe('PreparedStatements (the shop wallets’ business SQL)', () => {
  let db: PGlite;
  let sql: PreparedStatements;
  const sent: string[] = [];

  beforeAll(async () => {
    db = new PGlite();
    await db.exec('CREATE TABLE notes (id text PRIMARY KEY, n integer NOT NULL)');
    const exec = db.exec.bind(db);
    db.exec = ((text: string, options?: Parameters<PGlite['exec']>[1]) => {
      sent.push(text);
      return exec(text, options);
    }) as PGlite['exec'];
    sql = new PreparedStatements(db);
    // Only a hang is cut off: starting PGlite's engine takes a minute on a loaded machine.
  }, 300_000);
  afterAll(async () => {
    await db.close();
  });

  const insert = (id: string, n: number) =>
    sql.run<{ id: string }>('note_insert', 'INSERT INTO notes (id, n) VALUES ($1, $2) RETURNING id', [id, n]);

  it('prepares a statement once and runs it as EXECUTE with its parameters as literals', async () => {
    sent.length = 0;
    expect((await insert("o'brien", 1)).rows).toEqual([{ id: "o'brien" }]);
    expect((await insert('back\\slash', -2)).rows).toEqual([{ id: 'back\\slash' }]);
    expect(sent.filter((t) => t.startsWith('PREPARE'))).toHaveLength(1);
    expect(sent.filter((t) => t.startsWith('EXECUTE'))).toHaveLength(2);
    const { rows } = await db.query<{ id: string; n: number }>('SELECT id, n FROM notes ORDER BY n');
    expect(rows).toEqual([
      { id: 'back\\slash', n: -2 },
      { id: "o'brien", n: 1 },
    ]);
  });

  it('sends the statements of one turn in one trip, each answered with its own result', async () => {
    sent.length = 0;
    const results = await Promise.all([insert('a', 10), insert('b', 11), insert('c', 12)]);
    expect(results.map((r) => r.rows)).toEqual([[{ id: 'a' }], [{ id: 'b' }], [{ id: 'c' }]]);
    expect(sent).toHaveLength(1);
  });

  it('a failing statement fails alone: the others of its trip still take effect', async () => {
    const outcomes = await Promise.allSettled([insert('d', 20), insert('a', 21), insert('e', 22)]);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(((outcomes[1] as PromiseRejectedResult).reason as { code?: string }).code).toBe('23505');
    const { rows } = await db.query<{ id: string }>(
      "SELECT id FROM notes WHERE id IN ('a', 'd', 'e') ORDER BY id",
    );
    expect(rows.map((r) => r.id)).toEqual(['a', 'd', 'e']);
    // The duplicate changed nothing: 'a' keeps its first value.
    expect((await db.query<{ n: number }>("SELECT n FROM notes WHERE id = 'a'")).rows).toEqual([{ n: 10 }]);
  });

  it('refuses a number that is not whole, a NUL in a text, and a statement name that is not an identifier', async () => {
    await expect(insert('f', 1.5)).rejects.toThrow(new BadParameterError('1.5 is not a whole number'));
    await expect(insert('f', Number.NaN)).rejects.toBeInstanceOf(BadParameterError);
    await expect(insert('f\0g', 1)).rejects.toThrow(/cannot hold a NUL character/);
    await expect(sql.run('Bad Name; DROP TABLE notes', 'SELECT 1', [])).rejects.toThrow(
      /statement name "Bad Name; DROP TABLE notes"/,
    );
    expect(
      (await db.query<{ n: number }>("SELECT count(*)::int AS n FROM notes WHERE id = 'f'")).rows,
    ).toEqual([{ n: 0 }]);
  });

  it('a statement that cannot be prepared rejects with PostgreSQL’s error, and is prepared again next time', async () => {
    await expect(sql.run('note_broken', 'SELECT nope FROM notes', [])).rejects.toMatchObject({
      code: '42703',
    });
    await expect(sql.run('note_broken', 'SELECT nope FROM notes', [])).rejects.toMatchObject({
      code: '42703',
    });
  });
});
