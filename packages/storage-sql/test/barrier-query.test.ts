import { randomUUID } from 'node:crypto';
import { type TransactionContext, TransactionHangingError } from '@tcc/core';
import {
  type BarrierOptions,
  type BarrierQueryResult,
  barrier,
  barrierQuery,
  ConnectionLostError,
  migrateBarrier,
  type SqlClientInput,
} from '@tcc/storage-sql';
import type { Pool as PgPool, QueryConfig } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPGlite, type PGliteHarness } from '../../../test/support/pglite.js';
import { openPostgres, type PostgresHarness } from '../../../test/support/postgres.js';
import { phaseContext } from './fixtures/barrier-fixtures.js';

let pg: PostgresHarness;
let lite: PGliteHarness;
const pgSchema = { schema: '' };

// Accounts refuse a negative balance: a try that must fail fails its statement (see the TSDoc).
const TABLES = (q: string) => [
  `CREATE TABLE ${q}accounts (id text PRIMARY KEY, balance integer NOT NULL CHECK (balance >= 0))`,
  `CREATE TABLE ${q}freezes (branch text PRIMARY KEY, account text NOT NULL, amount integer NOT NULL)`,
];

beforeAll(async () => {
  [pg, lite] = await Promise.all([openPostgres({ max: 12 }), openPGlite()]);
  pgSchema.schema = pg.schema();
  await migrateBarrier(pg.pool, pgSchema);
  for (const statement of TABLES(`"${pgSchema.schema}".`)) await pg.pool.query(statement);
  await migrateBarrier(lite.db);
  for (const statement of TABLES('')) await lite.db.exec(statement);
});
afterAll(async () => {
  await Promise.all([pg?.end(), lite?.close()]);
});

/** The client, wrapped to count the statements sent and the local transactions opened. */
interface Counted {
  client: SqlClientInput;
  trips: number;
  transactions: number;
}

function countPool(pool: PgPool): Counted {
  const counted: Counted = {
    trips: 0,
    transactions: 0,
    client: {
      query: (config: QueryConfig) => {
        counted.trips++;
        return pool.query(config);
      },
      // Single statements too check a connection out (a refused one keeps it), so a trip is
      // counted per statement sent on it, and a transaction per BEGIN.
      connect: async () => {
        const connection = await pool.connect();
        const query = connection.query.bind(connection) as (config: QueryConfig) => Promise<unknown>;
        return Object.assign(Object.create(connection) as object, {
          query: (config: QueryConfig) => {
            counted.trips++;
            if (config.text === 'BEGIN') counted.transactions++;
            return query(config);
          },
          release: (error?: Error | boolean) => connection.release(error),
        });
      },
      get totalCount() {
        return pool.totalCount;
      },
    } as unknown as SqlClientInput,
  };
  return counted;
}

function countPGlite(db: PGliteHarness['db']): Counted {
  const counted: Counted = {
    trips: 0,
    transactions: 0,
    client: {
      dataDir: db.dataDir,
      query: (text: string, params?: unknown[]) => {
        counted.trips++;
        return db.query(text, params);
      },
      transaction: (fn: Parameters<typeof db.transaction>[0]) => {
        counted.transactions++;
        return db.transaction(fn);
      },
      exec: (text: string) => db.exec(text),
    } as unknown as SqlClientInput,
  };
  return counted;
}

describe.each<[string, () => Counted, () => SqlClientInput, () => BarrierOptions, () => string]>([
  ['PostgreSQL', () => countPool(pg.pool), () => pg.pool, () => pgSchema, () => `"${pgSchema.schema}".`],
  ['PGlite', () => countPGlite(lite.db), () => lite.db, () => ({}), () => ''],
])('barrierQuery on %s', (_name, counted, raw, options, q) => {
  async function plain<R = Record<string, unknown>>(text: string, params: unknown[] = []): Promise<R[]> {
    const c = raw() as { query(text: string, params: unknown[]): Promise<{ rows: unknown[] }> };
    return (await c.query(text, params)).rows as R[];
  }
  async function open(balance: number): Promise<string> {
    const id = randomUUID();
    await plain(`INSERT INTO ${q()}accounts (id, balance) VALUES ($1, $2)`, [id, balance]);
    return id;
  }
  async function balance(id: string): Promise<number> {
    const [row] = await plain<{ balance: number }>(`SELECT balance FROM ${q()}accounts WHERE id = $1`, [id]);
    return row!.balance;
  }
  async function fences(globalId: string): Promise<string[]> {
    const rows = await plain<{ phase: string; reason: string }>(
      `SELECT phase, reason FROM ${q()}tcc_transactions_barrier WHERE global_id = $1 ORDER BY phase`,
      [globalId],
    );
    return rows.map((r) => `${r.phase}:${r.reason}`);
  }
  /** One phase through a fresh counter: its result (or error) and the round trips it took. */
  async function phase(
    ctx: TransactionContext,
    text: string,
    values: unknown[],
  ): Promise<{ result?: BarrierQueryResult | undefined; error?: unknown; trips: number }> {
    const c = counted();
    try {
      const result = await barrierQuery(c.client, ctx, text, values, options());
      expect(c.transactions).toBe(0);
      return { result, trips: c.trips };
    } catch (error) {
      return { error, trips: c.trips };
    }
  }
  const debit = () => `UPDATE ${q()}accounts SET balance = balance - $2 WHERE id = $1 RETURNING balance`;
  const credit = () => `UPDATE ${q()}accounts SET balance = balance + $2 WHERE id = $1`;

  it('runs each phase exactly once, in one round trip, however often it is repeated', async () => {
    const id = await open(100);
    const globalId = randomUUID();
    const tried = await phase(phaseContext('try', globalId), debit(), [id, 30]);
    expect(tried).toEqual({ result: { rows: [{ balance: 70 }], rowCount: 1 }, trips: 1 });
    // A repeat reads the fence to tell itself from a hanging try: two round trips.
    expect(await phase(phaseContext('try', globalId), debit(), [id, 30])).toEqual({
      result: undefined,
      trips: 2,
    });
    await Promise.all([1, 2, 3].map(() => phase(phaseContext('try', globalId), debit(), [id, 30])));
    expect(await balance(id)).toBe(70);

    expect(await phase(phaseContext('cancel', globalId), credit(), [id, 30])).toEqual({
      result: { rows: [], rowCount: 1 },
      trips: 1,
    });
    expect(await phase(phaseContext('cancel', globalId), credit(), [id, 30])).toEqual({
      result: undefined,
      trips: 1,
    });
    const cancels = await Promise.all(
      [1, 2, 3].map(() => phase(phaseContext('cancel', globalId), credit(), [id, 30])),
    );
    expect(cancels.map((c) => c.result)).toEqual([undefined, undefined, undefined]);
    expect(await balance(id)).toBe(100);
    expect(await fences(globalId)).toEqual(['cancel:cancel', 'try:try']);

    const other = randomUUID();
    await phase(phaseContext('try', other), debit(), [id, 10]);
    const confirm = `UPDATE ${q()}accounts SET balance = balance + 0 WHERE id = $1`;
    expect(await phase(phaseContext('confirm', other), confirm, [id])).toEqual({
      result: { rows: [], rowCount: 1 },
      trips: 1,
    });
    const confirms = await Promise.all(
      [1, 2, 3, 4].map(() => phase(phaseContext('confirm', other), confirm, [id])),
    );
    expect(confirms).toEqual(Array(4).fill({ result: undefined, trips: 1 }));
    expect(await balance(id)).toBe(90);
    expect(await fences(other)).toEqual(['confirm:confirm', 'try:try']);
  });

  it('records a cancel whose try never ran (empty rollback) without running it, and refuses the later try', async () => {
    const id = await open(100);
    const globalId = randomUUID();
    expect(await phase(phaseContext('cancel', globalId), credit(), [id, 30])).toEqual({
      result: undefined,
      trips: 2,
    });
    expect(await balance(id)).toBe(100);
    expect(await fences(globalId)).toEqual(['cancel:cancel', 'try:cancel']);
    expect(await phase(phaseContext('cancel', globalId), credit(), [id, 30])).toEqual({
      result: undefined,
      trips: 2,
    });

    const hanging = await phase(phaseContext('try', globalId), debit(), [id, 30]);
    expect(hanging.error).toBeInstanceOf(TransactionHangingError);
    expect(hanging.error).toMatchObject({ code: 'TCC_TRANSACTION_HANGING', globalId });
    expect(hanging.trips).toBe(2);
    expect(await balance(id)).toBe(100);
    expect(await fences(globalId)).toEqual(['cancel:cancel', 'try:cancel']);
  });

  it('a try that fails its statement writes nothing, throws the driver error, and is cancelled as empty', async () => {
    const id = await open(10);
    const globalId = randomUUID();
    const failed = await phase(phaseContext('try', globalId), debit(), [id, 30]);
    expect(failed.error).toMatchObject({ code: '23514' }); // the CHECK (balance >= 0)
    expect(failed.trips).toBe(2);
    expect(await balance(id)).toBe(10);
    expect(await fences(globalId)).toEqual([]);
    expect((await phase(phaseContext('cancel', globalId), credit(), [id, 30])).result).toBeUndefined();
    expect(await balance(id)).toBe(10);
    expect((await phase(phaseContext('try', globalId), debit(), [id, 5])).error).toBeInstanceOf(
      TransactionHangingError,
    );
    expect(await balance(id)).toBe(10);
  });

  it('skips a repeat without throwing what its statement would now throw, as barrier skips fn', async () => {
    const id = await open(50);
    const globalId = randomUUID();
    await phase(phaseContext('try', globalId), debit(), [id, 30]);
    // Run again now, the debit would break the CHECK; the fence says it already ran (the
    // statement fails first, then the fence is read).
    expect(await phase(phaseContext('try', globalId), debit(), [id, 30])).toEqual({
      result: undefined,
      trips: 2,
    });
    const bad = `UPDATE ${q()}accounts SET balance = -1 WHERE id = $1`;
    await phase(phaseContext('confirm', globalId), `SELECT $1::text AS id`, [id]);
    expect(await phase(phaseContext('confirm', globalId), bad, [id])).toEqual({
      result: undefined,
      trips: 2,
    });
    expect(await balance(id)).toBe(20);
  });

  it('splices the fence into a statement with its own WITH (and RECURSIVE, comments, literals)', async () => {
    const id = await open(100);
    const globalId = randomUUID();
    const text = `-- the debit, with a CTE of its own; a ';' or $9 in a comment or string is no statement or value
      /* nested /* comment */ still; $8 */
      WITH debit AS (UPDATE ${q()}accounts SET balance = balance - $2 WHERE id = $1 RETURNING id, balance)
      SELECT id, balance, 'it''s $7;' AS note, $$dollar $6 ;$$ AS dollars, E'\\' $5' AS escaped FROM debit;`;
    const tried = await phase(phaseContext('try', globalId), text, [id, 30]);
    expect(tried.result).toEqual({
      rows: [{ id, balance: 70, note: "it's $7;", dollars: 'dollar $6 ;', escaped: "' $5" }],
      rowCount: 1,
    });
    expect(tried.trips).toBe(1);
    expect((await phase(phaseContext('try', globalId), text, [id, 30])).result).toBeUndefined();
    expect(await balance(id)).toBe(70);

    const recursive = `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1) SELECT i FROM n`;
    expect((await phase(phaseContext('confirm', globalId), recursive, [3])).result).toEqual({
      rows: [{ i: 1 }, { i: 2 }, { i: 3 }],
      rowCount: 3,
    });
    const cancel = `(SELECT $1::integer AS a) UNION ALL (SELECT 2)`;
    const other = randomUUID();
    await phase(phaseContext('try', other), `SELECT 1`, []);
    expect((await phase(phaseContext('cancel', other), cancel, [1])).result).toEqual({
      rows: [{ a: 1 }, { a: 2 }],
      rowCount: 2,
    });
    expect(await fences(globalId)).toEqual(['confirm:confirm', 'try:try']);
  });

  it('refuses a bad text or values before any SQL runs, naming them', async () => {
    const id = await open(100);
    const globalId = randomUUID();
    const cases: [unknown, unknown, RegExp][] = [
      [42, [], /text must be one SQL statement \(a string\), got 42/],
      ['  ', [], /text must be one SQL statement \(a string\), got " {2}"/],
      [`CREATE TABLE ${q()}x (a int)`, [], /SELECT, INSERT, UPDATE, DELETE or MERGE .* got "CREATE TABLE/],
      [
        `${credit()}; DELETE FROM ${q()}accounts`,
        [id, 1],
        /one statement; a second one follows .*"DELETE FROM/,
      ],
      [credit(), [id], /one value per placeholder: text uses \$1…\$2, values has 1/],
      [credit(), [id, 1, 2], /one value per placeholder: text uses \$1…\$2, values has 3/],
      [credit(), { id }, /values must be an array .* got object/],
    ];
    for (const [text, values, message] of cases) {
      for (const p of ['try', 'confirm', 'cancel'] as const) {
        const c = counted();
        const call = barrierQuery(
          c.client,
          phaseContext(p, globalId),
          text as string,
          values as unknown[],
          options(),
        );
        await expect(call).rejects.toMatchObject({ code: 'TCC_INVALID_OPTION', message });
        expect(c.trips).toBe(0);
      }
    }
    expect(await fences(globalId)).toEqual([]);
    expect(await balance(id)).toBe(100);
  });

  it('refuses a context without a participant and bad options, naming them', async () => {
    const c = counted();
    await expect(barrierQuery(c.client, undefined, 'SELECT 1', [], options())).rejects.toThrow(
      /barrierQuery: ctx must be .*\(no transaction in scope\)/,
    );
    await expect(
      barrierQuery(c.client, { ...phaseContext('try'), participantId: undefined }, 'SELECT 1', [], options()),
    ).rejects.toThrow(/barrierQuery: transaction .* no participant in scope.* call barrierQuery\(\)/);
    await expect(
      barrierQuery(c.client, phaseContext('try'), 'SELECT 1', [], { table: 'no-such' }),
    ).rejects.toThrow(/barrierQuery: table must be a SQL identifier .* got "no-such"/);
    expect(c.trips).toBe(0);
  });

  it('names the missing fence table and how to create it, writing nothing', async () => {
    const id = await open(100);
    for (const p of ['try', 'confirm', 'cancel'] as const) {
      const missing = await barrierQuery(raw(), phaseContext(p), credit(), [id, 1], {
        ...options(),
        table: 'missing',
      }).catch((e: unknown) => e);
      expect(missing).toMatchObject({ code: 'TCC_STORAGE', message: /missing_barrier.*migrateBarrier/s });
    }
    expect(await balance(id)).toBe(100);
  });

  it('works with barrier() on the same branch: one fence per phase, whichever wrote it', async () => {
    const id = await open(100);
    const globalId = randomUUID();
    await barrier(raw(), phaseContext('try', globalId), (tx) => tx.query(debit(), [id, 30]), options());
    expect((await phase(phaseContext('try', globalId), debit(), [id, 30])).result).toBeUndefined();
    expect((await phase(phaseContext('cancel', globalId), credit(), [id, 30])).result).toEqual({
      rows: [],
      rowCount: 1,
    });
    expect(
      await barrier(raw(), phaseContext('cancel', globalId), (tx) => tx.query(credit(), [id, 30]), options()),
    ).toBe(undefined);
    expect(await balance(id)).toBe(100);

    const empty = randomUUID();
    await phase(phaseContext('cancel', empty), credit(), [id, 30]);
    await expect(
      barrier(raw(), phaseContext('try', empty), (tx) => tx.query(debit(), [id, 30]), options()),
    ).rejects.toBeInstanceOf(TransactionHangingError);
    expect(await balance(id)).toBe(100);
  });
});

describe('barrierQuery under concurrency on PostgreSQL', () => {
  const t = (name: string) => `"${pgSchema.schema}".${name}`;
  const freeze = () =>
    `WITH debit AS (UPDATE ${t('accounts')} SET balance = balance - $3 WHERE id = $2 RETURNING id)
     INSERT INTO ${t('freezes')} (branch, account, amount) SELECT $1, id, $3 FROM debit`;
  // Reads what the try wrote (its freeze row): a snapshot older than the try's commit sees none.
  const unfreeze = () =>
    `WITH thawed AS (DELETE FROM ${t('freezes')} WHERE branch = $1 RETURNING account, amount)
     UPDATE ${t('accounts')} a SET balance = a.balance + thawed.amount FROM thawed WHERE a.id = thawed.account`;

  async function open(balance: number): Promise<string> {
    const id = randomUUID();
    await pg.pool.query(`INSERT INTO ${t('accounts')} (id, balance) VALUES ($1, $2)`, [id, balance]);
    return id;
  }
  async function state(id: string): Promise<{ balance: number; frozen: number }> {
    const { rows } = await pg.pool.query(
      `SELECT balance, (SELECT count(*)::int FROM ${t('freezes')} WHERE account = $1) AS frozen
       FROM ${t('accounts')} WHERE id = $1`,
      [id],
    );
    return rows[0];
  }
  /** Resolves once a statement containing `marker` waits on a lock (no clock involved). */
  async function waitingOnLock(marker: string): Promise<number> {
    for (;;) {
      const { rows } = await pg.pool.query(
        `SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%' || $1 || '%'
           AND query LIKE '%' || $2 || '%' AND pid <> pg_backend_pid()`,
        [marker, pgSchema.schema],
      );
      if (rows.length > 0) return rows[0].pid;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }
  /** A try run by barrier() and held open after its fence and freeze are written. */
  function heldTry(ctx: TransactionContext, id: string, amount: number, outcome: 'commit' | 'rollback') {
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let entered: () => void = () => {};
    const inside = new Promise<void>((resolve) => {
      entered = resolve;
    });
    const done = barrier(
      pg.pool,
      ctx,
      async (tx) => {
        await tx.query(freeze(), [`${ctx.xid}/${ctx.participantId}`, id, amount]);
        entered();
        await held;
        if (outcome === 'rollback') throw new Error('the try failed late');
      },
      pgSchema,
    ).catch((e: unknown) => e);
    return { inside, release, done };
  }

  it('a cancel racing a running try waits on its fence row, then undoes exactly what it committed', async () => {
    const id = await open(100);
    const ctx = phaseContext('try');
    const branch = `${ctx.xid}/${ctx.participantId}`;
    const running = heldTry(ctx, id, 30, 'commit');
    await running.inside;
    const counter = countPool(pg.pool);
    const cancel = barrierQuery(counter.client, { ...ctx, phase: 'cancel' }, unfreeze(), [branch], pgSchema);
    await waitingOnLock('try_fence'); // the fences-alone statement, on the try's uncommitted row
    running.release();
    expect(await running.done).toBeUndefined();
    // Its first statement failed (the try was not in its snapshot), the second waited, the
    // third ran with a snapshot that sees the freeze row.
    expect(await cancel).toEqual({ rows: [], rowCount: 1 });
    expect(counter.trips).toBe(3);
    expect(await state(id)).toEqual({ balance: 100, frozen: 0 });
  });

  it('a cancel racing a try that then rolls back records an empty rollback', async () => {
    const id = await open(100);
    const ctx = phaseContext('try');
    const branch = `${ctx.xid}/${ctx.participantId}`;
    const running = heldTry(ctx, id, 30, 'rollback');
    await running.inside;
    const cancel = barrierQuery(pg.pool, { ...ctx, phase: 'cancel' }, unfreeze(), [branch], pgSchema);
    await waitingOnLock('try_fence');
    running.release();
    expect(await running.done).toMatchObject({ message: 'the try failed late' });
    expect(await cancel).toBeUndefined();
    expect(await state(id)).toEqual({ balance: 100, frozen: 0 });
    const late = barrierQuery(pg.pool, ctx, freeze(), [branch, id, 30], pgSchema);
    await expect(late).rejects.toBeInstanceOf(TransactionHangingError);
    expect(await state(id)).toEqual({ balance: 100, frozen: 0 });
  });

  it('keeps every branch exact when tries, repeated tries and repeated cancels all race', async () => {
    const id = await open(10_000);
    const outcomes = await Promise.all(
      Array.from({ length: 25 }, async (_, i) => {
        const ctx = phaseContext('try');
        const branch = `${ctx.xid}/${ctx.participantId}`;
        const tryOnce = () =>
          barrierQuery(pg.pool, ctx, freeze(), [branch, id, 10], pgSchema).catch((e: unknown) => e);
        const cancelOnce = () =>
          barrierQuery(pg.pool, { ...ctx, phase: 'cancel' }, unfreeze(), [branch], pgSchema);
        // Alternate who starts first; everything else is up to the scheduler.
        const calls =
          i % 2 === 0
            ? [tryOnce(), cancelOnce(), tryOnce(), cancelOnce()]
            : [cancelOnce(), tryOnce(), cancelOnce(), tryOnce()];
        const [a, b, c, d] = await Promise.all(calls);
        const tries = i % 2 === 0 ? [a, c] : [b, d];
        const cancels = i % 2 === 0 ? [b, d] : [a, c];
        for (const r of tries) {
          if (r !== undefined && !(r instanceof TransactionHangingError))
            expect(r).toEqual({ rows: [], rowCount: 1 });
        }
        const tried = tries.filter((r) => r !== undefined && !(r instanceof TransactionHangingError)).length;
        const undone = cancels.filter((r) => r !== undefined).length;
        // A try that committed is undone exactly once; one that did not is never undone.
        expect(tried).toBeLessThanOrEqual(1);
        expect(undone).toBe(tried);
        return tried;
      }),
    );
    expect(outcomes.length).toBe(25);
    expect(await state(id)).toEqual({ balance: 10_000, frozen: 0 });
  });

  it('a connection lost mid-statement throws ConnectionLostError, writes nothing, and the phase runs again', async () => {
    const id = await open(100);
    const ctx = phaseContext('try');
    const branch = `${ctx.xid}/${ctx.participantId}`;
    const blocker = await pg.pool.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query(`SELECT 1 FROM ${t('accounts')} WHERE id = $1 FOR UPDATE`, [id]);
      const pool = pg.newPool(2);
      const lost = barrierQuery(pool, ctx, freeze(), [branch, id, 30], pgSchema).catch((e: unknown) => e);
      const pid = await waitingOnLock('tcc_barrier_fence');
      await pg.pool.query('SELECT pg_terminate_backend($1)', [pid]);
      const error = await lost;
      expect(error).toBeInstanceOf(ConnectionLostError);
      expect(error).toMatchObject({ code: 'TCC_CONNECTION_LOST', message: /run the phase again/ });
    } finally {
      await blocker.query('ROLLBACK');
      blocker.release();
    }
    expect(await state(id)).toEqual({ balance: 100, frozen: 0 });
    expect(await barrierQuery(pg.pool, ctx, freeze(), [branch, id, 30], pgSchema)).toEqual({
      rows: [],
      rowCount: 1,
    });
    expect(await state(id)).toEqual({ balance: 70, frozen: 1 });
  });
});
