import { randomBytes, randomUUID } from 'node:crypto';
import { StorageError, type TransactionContext } from '@tcc/core';
import { barrier, ConnectionLostError, migrateBarrier, type SqlExecutor } from '@tcc/storage-sql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgres, type PostgresHarness, pg as pgDriver } from '../../../test/support/postgres.js';

// The backends of this file's pool are found by their application_name and terminated from the
// harness's own pool, as an administrator, a failover or an idle-session timeout would.
const APP = `tcc-conn-lost-${randomBytes(4).toString('hex')}`;
const POOL_SIZE = 4;

let pg: PostgresHarness;
let pool: pgDriver.Pool;
let schema: string;
let accounts: string;
const idleErrors: Error[] = [];

beforeAll(async () => {
  pg = await openPostgres();
  schema = pg.schema();
  accounts = `"${schema}".accounts`;
  await migrateBarrier(pg.pool, { schema });
  await pg.pool.query(`CREATE TABLE ${accounts} (id text PRIMARY KEY, balance integer NOT NULL)`);
  pool = new pgDriver.Pool({ connectionString: pg.url, max: POOL_SIZE, application_name: APP });
  // What the README asks of every pool: an idle connection the server drops is reported here.
  pool.on('error', (error) => idleErrors.push(error));
});
afterAll(async () => {
  await pool?.end();
  await pg?.end();
});

function context(phase: TransactionContext['phase'], globalId = randomUUID()): TransactionContext {
  return {
    globalId,
    xid: globalId,
    domain: 'bank',
    rootDomain: 'bank',
    type: 'ROOT',
    deadline: Date.now() + 600_000,
    phase,
    participantId: 'p1',
  };
}

async function openAccounts(ids: string[], balance: number): Promise<void> {
  for (const id of ids) await pg.pool.query(`INSERT INTO ${accounts} VALUES ($1, $2)`, [id, balance]);
}

async function balances(ids: string[]): Promise<Map<string, number>> {
  const { rows } = await pg.pool.query<{ id: string; balance: number }>(
    `SELECT id, balance FROM ${accounts} WHERE id = ANY($1)`,
    [ids],
  );
  return new Map(rows.map((r) => [r.id, r.balance]));
}

/** Moves `amount` from one account to another in two statements: half of it applied would show. */
async function move(tx: SqlExecutor, from: string, to: string, amount: number): Promise<void> {
  await tx.query(`UPDATE ${accounts} SET balance = balance - $2 WHERE id = $1`, [from, amount]);
  await tx.query(`UPDATE ${accounts} SET balance = balance + $2 WHERE id = $1`, [to, amount]);
}

async function terminate(pids: number[]): Promise<number> {
  const { rows } = await pg.pool.query<{ done: boolean }>(
    'SELECT pg_terminate_backend(pid) AS done FROM unnest($1::int[]) AS pid',
    [pids],
  );
  return rows.filter((r) => r.done).length;
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('a PostgreSQL connection terminated inside barrier()', () => {
  it('gives every caller ConnectionLostError, applies nothing, and never hands a dead connection out again', async () => {
    const ids = Array.from({ length: 2 * POOL_SIZE }, () => randomUUID());
    await openAccounts(ids, 100);
    const pids: number[] = [];
    let open!: () => void;
    const gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    // Half of the barriers wait between their two statements (idle in transaction: the server's
    // notice arrives with no query running, the case that crashed the process), half inside a
    // statement (the query itself fails).
    const runs = Array.from({ length: POOL_SIZE }, (_, i) =>
      barrier(
        pool,
        context('try'),
        async (tx) => {
          const [row] = await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
          pids.push(row!.pid);
          await tx.query(`UPDATE ${accounts} SET balance = balance - 10 WHERE id = $1`, [ids[2 * i]]);
          if (i % 2 === 0) await gate;
          else await tx.query('SELECT pg_sleep(60)');
          await tx.query(`UPDATE ${accounts} SET balance = balance + 10 WHERE id = $1`, [ids[2 * i + 1]]);
        },
        { schema },
      ).then(
        () => undefined,
        (error: unknown) => error,
      ),
    );
    await until('every barrier to hold its connection', async () => pids.length === POOL_SIZE);
    await until('the sleeping statements to run', async () => {
      const { rows } = await pg.pool.query(
        `SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND query LIKE 'SELECT pg_sleep%' AND state = 'active'`,
        [APP],
      );
      return rows.length === POOL_SIZE / 2;
    });
    expect(await terminate(pids)).toBe(POOL_SIZE);
    // Let the server's goodbye reach the idle connections before their next statement.
    await until('the terminated backends to be gone', async () => {
      const { rows } = await pg.pool.query('SELECT 1 FROM pg_stat_activity WHERE pid = ANY($1)', [pids]);
      return rows.length === 0;
    });
    open();
    const errors = await Promise.all(runs);
    for (const error of errors) {
      expect(error).toBeInstanceOf(ConnectionLostError);
      expect(error).toMatchObject({ code: 'TCC_CONNECTION_LOST' });
      expect((error as Error).message).toMatch(
        /^barrier try of \S+ \S+\/p1 on "[^"]+"\."tcc_transactions_barrier": its PostgreSQL connection was lost \(.+\): nothing of the transaction was written/,
      );
    }
    expect([...(await balances(ids)).values()]).toEqual(ids.map(() => 100));
    const { rows: fences } = await pg.pool.query(`SELECT 1 FROM "${schema}".tcc_transactions_barrier`);
    expect(fences).toEqual([]);
    // Every pooled connection now works: none of the dead ones went back into the pool.
    const answers = await Promise.all(
      Array.from({ length: POOL_SIZE }, () =>
        barrier(pool, context('try'), async (tx) => (await tx.query('SELECT 1 AS one'))[0], { schema }),
      ),
    );
    expect(answers).toEqual(Array.from({ length: POOL_SIZE }, () => ({ one: 1 })));
    expect(pool.totalCount).toBeLessThanOrEqual(POOL_SIZE);
  });

  it('under load with backends terminated at random, retried transfers each apply exactly once', async () => {
    const ids = Array.from({ length: 6 }, () => randomUUID());
    await openAccounts(ids, 10_000);
    const transfers = Array.from({ length: 120 }, (_, i) => ({
      ctx: context('try'),
      from: ids[i % ids.length]!,
      to: ids[(i * 5 + 1) % ids.length]!,
      amount: 1 + (i % 7),
    }));
    let lost = 0;
    let running = true;
    const killer = (async () => {
      let killed = 0;
      while (running) {
        const { rows } = await pg.pool.query<{ pid: number }>(
          `SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND state IN ('active', 'idle in transaction')
           ORDER BY random() LIMIT 1`,
          [APP],
        );
        if (rows.length > 0) killed += await terminate(rows.map((r) => r.pid));
        await new Promise((resolve) => setTimeout(resolve, 15));
      }
      return killed;
    })();
    const queue = [...transfers];
    const worker = async () => {
      for (let t = queue.shift(); t !== undefined; t = queue.shift()) {
        // A phase that failed is run again as it is, as recovery would: the fence keeps a phase
        // whose COMMIT landed before the connection died from applying twice.
        for (let attempt = 1; ; attempt++) {
          try {
            await barrier(
              pool,
              t.ctx,
              async (tx) => {
                await move(tx, t.from, t.to, t.amount);
                await tx.query('SELECT pg_sleep(0.005)');
              },
              { schema },
            );
            break;
          } catch (error) {
            if (!(error instanceof ConnectionLostError) || attempt === 100) throw error;
            lost++;
          }
        }
      }
    };
    try {
      await Promise.all(Array.from({ length: 8 }, worker));
    } finally {
      running = false;
    }
    const killed = await killer;

    const expected = new Map(ids.map((id) => [id, 10_000]));
    for (const t of transfers) {
      expected.set(t.from, expected.get(t.from)! - t.amount);
      expected.set(t.to, expected.get(t.to)! + t.amount);
    }
    expect(await balances(ids)).toEqual(expected);
    const { rows } = await pg.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM "${schema}".tcc_transactions_barrier WHERE global_id = ANY($1)`,
      [transfers.map((t) => t.ctx.globalId)],
    );
    expect(rows[0]!.n).toBe(transfers.length);
    // Not an assertion on timing: how many landed mid-barrier depends on the machine.
    console.log(`terminated ${killed} backends; ${lost} barrier attempts lost their connection`);
  });

  it('on a pg.Client given as client: ConnectionLostError, nothing applied', async () => {
    const id = randomUUID();
    await openAccounts([id], 100);
    const client = new pgDriver.Client({ connectionString: pg.url, application_name: APP });
    // No 'error' listener of the test's own: the barrier's, while it holds the client, keeps
    // the server's goodbye from crashing the process.
    await client.connect();
    try {
      let pid = 0;
      const run = barrier(
        client,
        context('try'),
        async (tx) => {
          pid = (await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid'))[0]!.pid;
          await tx.query(`UPDATE ${accounts} SET balance = balance - 10 WHERE id = $1`, [id]);
          await tx.query('SELECT pg_sleep(60)');
        },
        { schema },
      ).catch((error: unknown) => error);
      await until('the barrier to sleep', async () => {
        const { rows } = await pg.pool.query(
          `SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND query LIKE 'SELECT pg_sleep%' AND state = 'active'`,
          [pid],
        );
        return rows.length === 1;
      });
      expect(await terminate([pid])).toBe(1);
      expect(await run).toBeInstanceOf(ConnectionLostError);
      expect((await balances([id])).get(id)).toBe(100);
    } finally {
      await client.end().catch(() => {});
    }
  });

  it('keeps a server error at COMMIT what it is (not a lost connection), and applies nothing', async () => {
    const table = `"${schema}".codes`;
    await pg.pool.query(
      `CREATE TABLE ${table} (code text UNIQUE DEFERRABLE INITIALLY DEFERRED, note text NOT NULL)`,
    );
    const error = await barrier(
      pool,
      context('try'),
      async (tx) => {
        // Checked only at COMMIT: the statement succeeds, the commit fails with 23505.
        await tx.query(`INSERT INTO ${table} VALUES ('a', 'first'), ('a', 'second')`);
      },
      { schema },
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StorageError);
    expect(error).not.toBeInstanceOf(ConnectionLostError);
    expect((error as Error).message).toMatch(/barrier try of .* failed: duplicate key value/);
    expect((await pg.pool.query(`SELECT 1 FROM ${table}`)).rows).toEqual([]);
  });
});
