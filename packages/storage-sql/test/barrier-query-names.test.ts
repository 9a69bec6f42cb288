import { barrierQuery } from '@tcc/storage-sql';
import { describe, expect, it } from 'vitest';
import { phaseContext, recordStatements, useAccounts } from './fixtures/barrier-fixtures.js';

// barrierQuery names (prepares) a bounded number of business texts per process. Alone in its
// file: vitest gives each file its own module state, so the count starts at zero here.

const db = useAccounts();

describe('barrierQuery on a pg.Pool', () => {
  it('names no more than a bounded number of texts: texts built on the fly are sent unnamed, and still work', async () => {
    const pool = db.pg.newPool(2);
    const sent = recordStatements(pool);
    const id = await db.open(100_000);
    let firstUnnamed: number | undefined;
    // Each text is new (its comment differs), as when an application splices values into SQL.
    for (let i = 0; i < 300; i++) {
      const text = `UPDATE ${db.accounts} SET balance = balance - $2 WHERE id = $1 /* on the fly ${i} */`;
      await barrierQuery(pool, phaseContext('try'), text, [id, 1], { schema: db.schema });
      const last = sent.filter((s) => s.text.includes(`/* on the fly ${i} */`)).at(-1);
      if (last?.name === undefined) firstUnnamed ??= i;
      else expect(firstUnnamed).toBeUndefined(); // once the bound is reached, nothing new is named
    }
    // A file of its own (its own module state): no other text was named before these.
    expect(firstUnnamed).toBe(256);
    const { rows } = await pool.query(`SELECT balance FROM ${db.accounts} WHERE id = $1`, [id]);
    expect(rows).toEqual([{ balance: 100_000 - 300 }]);
  });
});
