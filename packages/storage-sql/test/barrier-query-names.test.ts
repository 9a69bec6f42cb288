import { randomUUID } from 'node:crypto';
import type { TransactionContext } from '@tcc/core';
import { barrierQuery, migrateBarrier } from '@tcc/storage-sql';
import type { Pool as PgPool, PoolClient } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgres, type PostgresHarness } from '../../../test/support/postgres.js';

// barrierQuery names (prepares) a bounded number of business texts per process. Alone in its
// file: vitest gives each file its own module state, so the count starts at zero here.

let pg: PostgresHarness;
let schema: string;
let accounts: string;

beforeAll(async () => {
  pg = await openPostgres();
  schema = pg.schema();
  accounts = `"${schema}".accounts`;
  await migrateBarrier(pg.pool, { schema });
  await pg.pool.query(
    `CREATE TABLE ${accounts} (id text PRIMARY KEY, balance integer NOT NULL CHECK (balance >= 0))`,
  );
});
afterAll(async () => {
  await pg?.end();
});

function context(phase: TransactionContext['phase']): TransactionContext {
  const globalId = randomUUID();
  return {
    globalId,
    xid: globalId,
    domain: 'order',
    rootDomain: 'order',
    type: 'ROOT',
    deadline: Date.now() + 60_000,
    phase,
    participantId: 'p1',
  };
}

async function open(balance: number): Promise<string> {
  const id = randomUUID();
  await pg.pool.query(`INSERT INTO ${accounts} (id, balance) VALUES ($1, $2)`, [id, balance]);
  return id;
}

/** Records the name (or none) of every statement sent on the pool's connections. */
function recordNames(pool: PgPool): { text: string; name: string | undefined }[] {
  const sent: { text: string; name: string | undefined }[] = [];
  pool.on('acquire', (connection: PoolClient) => {
    const seen = connection as PoolClient & { recorded?: true };
    if (seen.recorded) return;
    seen.recorded = true;
    const query = connection.query.bind(connection) as (...args: unknown[]) => unknown;
    (connection as { query: unknown }).query = (config: unknown, ...rest: unknown[]) => {
      if (typeof config === 'object' && config !== null) {
        const { text, name } = config as { text: string; name?: string };
        sent.push({ text, name });
      }
      return query(config, ...rest);
    };
  });
  return sent;
}

describe('barrierQuery on a pg.Pool', () => {
  it('names no more than a bounded number of texts: texts built on the fly are sent unnamed, and still work', async () => {
    const pool = pg.newPool(2);
    const sent = recordNames(pool);
    const id = await open(100_000);
    let firstUnnamed: number | undefined;
    // Each text is new (its comment differs), as when an application splices values into SQL.
    for (let i = 0; i < 300; i++) {
      const text = `UPDATE ${accounts} SET balance = balance - $2 WHERE id = $1 /* on the fly ${i} */`;
      await barrierQuery(pool, context('try'), text, [id, 1], { schema });
      const last = sent.filter((s) => s.text.includes(`/* on the fly ${i} */`)).at(-1);
      if (last?.name === undefined) firstUnnamed ??= i;
      else expect(firstUnnamed).toBeUndefined(); // once the bound is reached, nothing new is named
    }
    // A file of its own (its own module state): no other text was named before these.
    expect(firstUnnamed).toBe(256);
    const { rows } = await pool.query(`SELECT balance FROM ${accounts} WHERE id = $1`, [id]);
    expect(rows).toEqual([{ balance: 100_000 - 300 }]);
  });
});
