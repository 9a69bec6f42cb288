import { randomUUID } from 'node:crypto';
import { Tcc, type TransactionContext, TransactionHangingError } from '@tcc/core';
import {
  type BarrierOptions,
  barrier,
  migrateBarrier,
  RolledBackError,
  type SqlClientInput,
  SqlStorage,
} from '@tcc/storage-sql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPGlite, type PGliteHarness } from '../../../test/support/pglite.js';
import { openPostgres, type PostgresHarness } from '../../../test/support/postgres.js';
import { phaseContext } from './fixtures/barrier-fixtures.js';

let pg: PostgresHarness;
let lite: PGliteHarness;
const pgSchema = { schema: '' };

beforeAll(async () => {
  [pg, lite] = await Promise.all([openPostgres({ max: 8 }), openPGlite()]);
  pgSchema.schema = pg.schema();
  await migrateBarrier(pg.pool, pgSchema);
  await migrateBarrier(pg.pool, pgSchema); // idempotent
  await pg.pool.query(
    `CREATE TABLE "${pgSchema.schema}".accounts (id text PRIMARY KEY, balance integer NOT NULL)`,
  );
  await migrateBarrier(lite.db);
  await lite.db.exec('CREATE TABLE accounts (id text PRIMARY KEY, balance integer NOT NULL)');
});
afterAll(async () => {
  await Promise.all([pg?.end(), lite?.close()]);
});

describe.each<[string, () => SqlClientInput, () => BarrierOptions, () => string]>([
  ['PostgreSQL', () => pg.pool, () => pgSchema, () => `"${pgSchema.schema}".accounts`],
  ['PGlite', () => lite.db, () => ({}), () => 'accounts'],
])('barrier on %s', (_name, client, options, accounts) => {
  async function open(id: string, balance: number): Promise<void> {
    await barrierless(`INSERT INTO ${accounts()} (id, balance) VALUES ($1, $2)`, [id, balance]);
  }
  async function barrierless(text: string, params: unknown[]): Promise<unknown[]> {
    const c = client() as { query(text: string, params: unknown[]): Promise<{ rows: unknown[] }> };
    return (await c.query(text, params)).rows;
  }
  async function balance(id: string): Promise<number> {
    const [row] = (await barrierless(`SELECT balance FROM ${accounts()} WHERE id = $1`, [id])) as {
      balance: number;
    }[];
    return row!.balance;
  }
  /** One phase of a transfer: try freezes (−amount), confirm does nothing here, cancel adds back. */
  function step(ctx: TransactionContext, id: string, delta: number, runs: string[]) {
    return barrier(
      client(),
      ctx,
      async (tx) => {
        runs.push(ctx.phase);
        await tx.query(`UPDATE ${accounts()} SET balance = balance + $2 WHERE id = $1`, [id, delta]);
        return ctx.phase;
      },
      options(),
    );
  }

  it('runs each phase exactly once however often it is repeated', async () => {
    const id = randomUUID();
    await open(id, 100);
    const globalId = randomUUID();
    const runs: string[] = [];
    expect(await step(phaseContext('try', globalId), id, -30, runs)).toBe('try');
    expect(await step(phaseContext('try', globalId), id, -30, runs)).toBeUndefined();
    await Promise.all([1, 2, 3].map(() => step(phaseContext('try', globalId), id, -30, runs)));
    expect(await balance(id)).toBe(70);
    expect(await step(phaseContext('cancel', globalId), id, 30, runs)).toBe('cancel');
    await Promise.all([1, 2, 3].map(() => step(phaseContext('cancel', globalId), id, 30, runs)));
    expect(await balance(id)).toBe(100);
    expect(runs).toEqual(['try', 'cancel']);

    const other = randomUUID();
    await step(phaseContext('try', other), id, -10, runs);
    await Promise.all([1, 2, 3, 4].map(() => step(phaseContext('confirm', other), id, 0, runs)));
    expect(runs).toEqual(['try', 'cancel', 'try', 'confirm']);
    expect(await balance(id)).toBe(90);
  });

  it('records a cancel whose try never ran (empty rollback) and refuses the try that arrives later', async () => {
    const id = randomUUID();
    await open(id, 100);
    const globalId = randomUUID();
    const runs: string[] = [];
    expect(await step(phaseContext('cancel', globalId), id, 30, runs)).toBeUndefined();
    expect(await step(phaseContext('cancel', globalId), id, 30, runs)).toBeUndefined();
    expect(runs).toEqual([]);
    expect(await balance(id)).toBe(100);

    const error = await step(phaseContext('try', globalId), id, -30, runs).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TransactionHangingError);
    expect(error).toMatchObject({ code: 'TCC_TRANSACTION_HANGING', globalId });
    expect(runs).toEqual([]);
    expect(await balance(id)).toBe(100);
  });

  it('rolls back the business change and the fence when fn throws, so the phase can run again', async () => {
    const id = randomUUID();
    await open(id, 100);
    const ctx = phaseContext('try');
    const failure = barrier(
      client(),
      ctx,
      async (tx) => {
        await tx.query(`UPDATE ${accounts()} SET balance = balance - 30 WHERE id = $1`, [id]);
        throw new Error('business rule');
      },
      options(),
    );
    await expect(failure).rejects.toThrow('business rule');
    expect(await balance(id)).toBe(100);
    // No fence left: the same try runs again, and its cancel then undoes it.
    const runs: string[] = [];
    await step(ctx, id, -30, runs);
    expect(await balance(id)).toBe(70);
    await step(ctx, id, -30, runs); // a duplicate of the try that succeeded: skipped
    expect(await balance(id)).toBe(70);
    await step({ ...ctx, phase: 'cancel' }, id, 30, runs);
    expect(await balance(id)).toBe(100);
    expect(runs).toEqual(['try', 'cancel']);
  });

  it('a failed try is cancelled as an empty rollback, and the try is refused afterwards', async () => {
    const id = randomUUID();
    await open(id, 100);
    const ctx = phaseContext('try');
    await expect(
      barrier(client(), ctx, async () => Promise.reject(new Error('business rule')), options()),
    ).rejects.toThrow('business rule');
    const runs: string[] = [];
    expect(await step({ ...ctx, phase: 'cancel' }, id, 30, runs)).toBeUndefined();
    await expect(step(ctx, id, -30, runs)).rejects.toBeInstanceOf(TransactionHangingError);
    expect(runs).toEqual([]);
    expect(await balance(id)).toBe(100);
  });

  it('makes a cancel that races a running try wait for it, then undo exactly what it did', async () => {
    const id = randomUUID();
    await open(id, 100);
    const ctx = phaseContext('try');
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let entered: () => void = () => {};
    const inside = new Promise<void>((resolve) => {
      entered = resolve;
    });
    const runs: string[] = [];
    const tryRun = barrier(
      client(),
      ctx,
      async (tx) => {
        runs.push('try');
        await tx.query(`UPDATE ${accounts()} SET balance = balance - 30 WHERE id = $1`, [id]);
        entered();
        await held; // the try is still running (fence row written, not committed)
      },
      options(),
    );
    await inside;
    const cancelRun = step({ ...ctx, phase: 'cancel' }, id, 30, runs);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(runs).toEqual(['try']); // the cancel waits on the try's uncommitted fence row
    release();
    await tryRun;
    await cancelRun;
    expect(runs).toEqual(['try', 'cancel']);
    expect(await balance(id)).toBe(100);
  });

  it('refuses to report a phase done when fn swallowed a failed statement (nothing is written)', async () => {
    const id = randomUUID();
    await open(id, 100);
    const ctx = phaseContext('confirm');
    const swallowed = barrier(
      client(),
      ctx,
      async (tx) => {
        await tx.query(`UPDATE ${accounts()} SET balance = balance - 30 WHERE id = $1`, [id]);
        // A duplicate key the callback means to ignore: PostgreSQL aborts the transaction.
        await tx.query(`INSERT INTO ${accounts()} (id, balance) VALUES ($1, 0)`, [id]).catch(() => {});
        return 'done';
      },
      options(),
    );
    const error = await swallowed.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RolledBackError);
    expect(error).toMatchObject({ code: 'TCC_ROLLED_BACK' });
    expect(await balance(id)).toBe(100);
    // No fence was written either: the confirm runs when retried.
    const runs: string[] = [];
    await step(ctx, id, -30, runs);
    expect(runs).toEqual(['confirm']);
    expect(await balance(id)).toBe(70);
  });

  it('refuses a context without a participant, naming the problem', async () => {
    await expect(barrier(client(), undefined, async () => 1, options())).rejects.toThrow(
      /no transaction in scope/,
    );
    await expect(
      barrier(client(), { ...phaseContext('try'), participantId: undefined }, async () => 1, options()),
    ).rejects.toThrow(/no participant in scope/);
  });
});

describe('barrier inside a real Tcc on PostgreSQL', () => {
  it('keeps balances exact through confirm, cancel and a repeated confirm', async () => {
    const schema = pg.schema();
    const storage = new SqlStorage({ client: pg.pool, schema });
    await storage.migrate(); // also creates the barrier table
    await pg.pool.query(
      `CREATE TABLE "${schema}".accounts (id text PRIMARY KEY, balance integer, frozen integer)`,
    );
    await pg.pool.query(`INSERT INTO "${schema}".accounts VALUES ('alice', 100, 0)`);
    const tcc = new Tcc({ domain: 'order', storage });
    const fence = { schema };
    const t = `"${schema}".accounts`;
    const debit = tcc.compensable('capital.debit', {
      try: (amount: number) =>
        barrier(
          pg.pool,
          tcc.current(),
          async (tx) => {
            const rows = await tx.query(
              `UPDATE ${t} SET balance = balance - $1, frozen = frozen + $1 WHERE id = 'alice' AND balance >= $1 RETURNING 1`,
              [amount],
            );
            if (rows.length === 0) throw new Error('insufficient funds');
          },
          fence,
        ),
      confirm: (amount: number) =>
        barrier(
          pg.pool,
          tcc.current(),
          (tx) => tx.query(`UPDATE ${t} SET frozen = frozen - $1 WHERE id = 'alice'`, [amount]),
          fence,
        ),
      cancel: (amount: number) =>
        barrier(
          pg.pool,
          tcc.current(),
          (tx) =>
            tx.query(`UPDATE ${t} SET balance = balance + $1, frozen = frozen - $1 WHERE id = 'alice'`, [
              amount,
            ]),
          fence,
        ),
    });
    await tcc.transaction(async () => {
      await debit(30);
    });
    await expect(
      tcc.transaction(async () => {
        await debit(20);
        throw new Error('changed my mind');
      }),
    ).rejects.toThrow('changed my mind');
    await expect(tcc.transaction(() => debit(500))).rejects.toThrow('insufficient funds');
    const { rows } = await pg.pool.query(`SELECT balance, frozen FROM ${t}`);
    expect(rows).toEqual([{ balance: 70, frozen: 0 }]);
    const fences = await pg.pool.query(
      `SELECT phase, reason FROM "${schema}".tcc_transactions_barrier ORDER BY created_at, phase`,
    );
    expect(
      fences.rows.map((r: { phase: string; reason: string }) => `${r.phase}:${r.reason}`).sort(),
    ).toEqual(
      ['cancel:cancel', 'cancel:cancel', 'confirm:confirm', 'try:cancel', 'try:try', 'try:try'].sort(),
    );
    await tcc.stop();
  });
});
