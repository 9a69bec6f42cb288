import { randomUUID } from 'node:crypto';
import { makeRecord } from '@tcc/core/testing';
import { barrier, barrierQuery, SqlStorage } from '@tcc/storage-sql';
import type { Pool as PgPool } from 'pg';
import { describe, expect, it } from 'vitest';
import { pg as pgDriver } from '../../../test/support/postgres.js';
import { phaseContext, recordStatements, useAccounts } from './fixtures/barrier-fixtures.js';

// barrierQuery and the store on a pg.Pool: what they do to the pool's connections, and the
// statements they prepare. (barrier-query.test.ts holds the protocol, on pg and PGlite alike.)

const db = useAccounts();

/** The backend process of the pool's one connection: a new one means the old was discarded. */
async function backend(pool: PgPool): Promise<number> {
  const { rows } = await pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  return rows[0]!.pid;
}

describe('barrierQuery on a pg.Pool', () => {
  it('keeps the connection of a statement the server refused: a try over budget, an empty rollback', async () => {
    const pool = db.pg.newPool(1);
    const pid = await backend(pool);
    const id = await db.open(10);
    const globalId = randomUUID();
    const debit = `UPDATE ${db.accounts} SET balance = balance - $2 WHERE id = $1`;
    // The CHECK refuses the try: the driver's error, nothing written.
    await expect(
      barrierQuery(pool, phaseContext('try', globalId), debit, [id, 50], { schema: db.schema }),
    ).rejects.toMatchObject({
      code: '23514',
    });
    // Its cancel finds no try: a statement that fails by design, then the empty rollback.
    const credit = `UPDATE ${db.accounts} SET balance = balance + $2 WHERE id = $1`;
    expect(
      await barrierQuery(pool, phaseContext('cancel', globalId), credit, [id, 50], { schema: db.schema }),
    ).toBeUndefined();
    // pg-pool's own query() would have closed the connection after each refusal.
    expect(await backend(pool)).toBe(pid);
    expect(pool.totalCount).toBe(1);
    const { rows } = await pool.query(`SELECT balance FROM ${db.accounts} WHERE id = $1`, [id]);
    expect(rows).toEqual([{ balance: 10 }]);
  });

  it('discards a connection that was lost under a statement, and the next statement gets a new one', async () => {
    const pool = db.pg.newPool(1);
    const pid = await backend(pool);
    const id = await db.open(10);
    const debit = `UPDATE ${db.accounts} SET balance = balance - $2 WHERE id = $1 AND pg_sleep(30) IS NOT NULL`;
    // Its outcome is caught at once: it may fail before the test gets to look at it.
    const outcome = barrierQuery(pool, phaseContext('try'), debit, [id, 1], { schema: db.schema }).then(
      () => 'resolved',
      (error: unknown) => error,
    );
    const other = db.pg.pool;
    // Terminate the backend once the statement is running on it (a generous bound for a busy machine).
    const deadline = Date.now() + 20_000;
    for (;;) {
      const { rows } = await other.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1 AND state = 'active'`,
        [pid],
      );
      if (rows[0]!.n === 1) break;
      if (Date.now() > deadline) throw new Error(`the statement never ran on backend ${pid}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await other.query('SELECT pg_terminate_backend($1)', [pid]);
    expect(await outcome).toMatchObject({ code: 'TCC_CONNECTION_LOST' });
    expect(await backend(pool)).not.toBe(pid);
    const { rows } = await pool.query(`SELECT balance FROM ${db.accounts} WHERE id = $1`, [id]);
    expect(rows).toEqual([{ balance: 10 }]);
  });

  it('prepares each phase statement once per connection, under a name made of its whole text', async () => {
    const pool = db.pg.newPool(1);
    const sent = recordStatements(pool);
    const id = await db.open(100);
    const debit = `UPDATE ${db.accounts} SET balance = balance - $2 WHERE id = $1 /* prepared */`;
    const credit = `UPDATE ${db.accounts} SET balance = balance + $2 WHERE id = $1 /* prepared */`;
    for (const n of [1, 2, 3]) {
      const globalId = randomUUID();
      await barrierQuery(pool, phaseContext('try', globalId), debit, [id, n], { schema: db.schema });
      await barrierQuery(pool, phaseContext('confirm', globalId), credit, [id, n], { schema: db.schema });
    }
    const names = sent.filter((s) => s.text.includes('/* prepared */')).map((s) => s.name);
    expect(names).toHaveLength(6);
    expect(names.every((name) => name !== undefined && /^tcc_bq_[0-9a-f]{32}$/.test(name))).toBe(true);
    // try and confirm: two texts, two names, each the same on every call.
    expect(new Set(names).size).toBe(2);
    expect(names[0]).toBe(names[2]);
    expect(names[1]).toBe(names[3]);
    const { rows } = await pool.query(`SELECT balance FROM ${db.accounts} WHERE id = $1`, [id]);
    expect(rows).toEqual([{ balance: 100 }]);
  });
});

describe('barrierQuery and altered tables, on a pool and on a lone pg.Client', () => {
  it('replaces a connection whose prepared phase statement no longer fits its table: one failure, then it runs', async () => {
    const table = `"${db.schema}".altered`;
    await db.pg.pool.query(`CREATE TABLE ${table} (id text PRIMARY KEY, balance integer NOT NULL)`);
    await db.pg.pool.query(`INSERT INTO ${table} (id, balance) VALUES ('a', 100)`);
    const pool = db.pg.newPool(1);
    const pid = await backend(pool);
    const debit = `UPDATE ${table} SET balance = balance - $2 WHERE id = $1 RETURNING *`;
    expect(
      await barrierQuery(pool, phaseContext('try'), debit, ['a', 1], { schema: db.schema }),
    ).toMatchObject({
      rows: [{ id: 'a', balance: 99 }],
    });
    // A migration adds a column: the prepared statement's result type no longer holds.
    await db.pg.pool.query(`ALTER TABLE ${table} ADD COLUMN note text`);
    await expect(
      barrierQuery(pool, phaseContext('try'), debit, ['a', 1], { schema: db.schema }),
    ).rejects.toMatchObject({
      code: '0A000',
    });
    expect(await backend(pool)).not.toBe(pid);
    expect(
      await barrierQuery(pool, phaseContext('try'), debit, ['a', 1], { schema: db.schema }),
    ).toMatchObject({
      rows: [{ id: 'a', balance: 98, note: null }],
    });
  });

  it('sends unnamed statements on a lone pg.Client, which a value pg cannot send does not spoil', async () => {
    const client = new pgDriver.Client({ connectionString: db.pg.url });
    await client.connect();
    try {
      const names: (string | undefined)[] = [];
      const query = client.query.bind(client) as (...args: unknown[]) => unknown;
      (client as { query: unknown }).query = (config: unknown, ...rest: unknown[]) => {
        if (typeof config === 'object' && config !== null && 'text' in config)
          names.push((config as { name?: string }).name);
        return query(config, ...rest);
      };
      const id = await db.open(100);
      const debit = `UPDATE ${db.accounts} SET balance = balance - $2 WHERE id = $1 /* client */`;
      // A bigint inside an object: pg cannot serialize it and throws before the statement runs.
      await expect(
        barrierQuery(client, phaseContext('try'), debit, [id, { n: 1n }], { schema: db.schema }),
      ).rejects.toThrow();
      expect(
        await barrierQuery(client, phaseContext('try'), debit, [id, 1], { schema: db.schema }),
      ).toMatchObject({
        rowCount: 1,
      });
      expect(names.every((name) => name === undefined)).toBe(true);
      const { rows } = await db.pg.pool.query(`SELECT balance FROM ${db.accounts} WHERE id = $1`, [id]);
      expect(rows).toEqual([{ balance: 99 }]);
    } finally {
      await client.end();
    }
  });
});

describe('barrier on a pg.Pool', () => {
  it("prepares its own fence statements once per connection; the callback's statements are the caller's", async () => {
    const pool = db.pg.newPool(1);
    const sent = recordStatements(pool);
    const id = await db.open(100);
    const globalId = randomUUID();
    const debit = `UPDATE ${db.accounts} SET balance = balance - $2 WHERE id = $1`;
    for (const phase of ['try', 'try', 'confirm'] as const) {
      await barrier(pool, phaseContext(phase, globalId), (tx) => tx.query(debit, [id, 10]), {
        schema: db.schema,
      });
    }
    const fences = sent.filter((s) => s.text.includes('tcc_transactions_barrier'));
    // try: the fence; its repeat: the fence (a conflict) and the try's reason; confirm: the fence.
    expect(fences.map((s) => s.name?.replace(/^tcc_[0-9a-f]+_/, ''))).toEqual([
      'b_fence',
      'b_fence',
      'b_try_reason',
      'b_fence',
    ]);
    expect(sent.filter((s) => s.text === debit).map((s) => s.name)).toEqual([undefined, undefined]);
    const { rows } = await pool.query(`SELECT balance FROM ${db.accounts} WHERE id = $1`, [id]);
    expect(rows).toEqual([{ balance: 80 }]);
  });
});

describe('SqlStorage on a pg.Pool', () => {
  it('keeps its connection when a write is refused by the server', async () => {
    const pool = db.pg.newPool(1);
    const storeSchema = db.pg.schema();
    const storage = new SqlStorage({ client: pool, schema: storeSchema });
    await storage.migrate();
    const pid = await backend(pool);
    // A rule of the database the store does not know of refuses the write.
    await pool.query(
      `ALTER TABLE "${storeSchema}".tcc_transactions ADD CONSTRAINT no_poison CHECK (domain <> 'poison')`,
    );
    const record = makeRecord({ domain: 'poison' });
    await expect(storage.create(record)).rejects.toMatchObject({ code: 'TCC_STORAGE' });
    expect(await storage.count({ domain: 'poison' })).toBe(0);
    expect(await backend(pool)).toBe(pid);
    await storage.close();
  });
});
