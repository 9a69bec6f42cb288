import { randomBytes } from 'node:crypto';
import {
  DuplicateTransactionError,
  OptimisticLockError,
  StorageError,
  type TransactionRecord,
} from '@tcc/core';
import { makeRecord } from '@tcc/core/testing';
import { SqlStorage } from '@tcc/storage-sql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgres, type PostgresHarness, pg as pgDriver } from '../../../test/support/postgres.js';

// The log writes a store issues during one turn of the event loop (Promise.all, or under load
// the writes of every request answered in that turn) go to a server as one statement.

let pg: PostgresHarness;

beforeAll(async () => {
  pg = await openPostgres({ max: 4 });
});
afterAll(async () => {
  await pg?.end();
});

/** A pool whose statements to the log are recorded by their name, and a migrated store on it. */
async function openStore(options: { applicationName?: string } = {}) {
  const schema = pg.schema();
  const pool = new pgDriver.Pool({
    connectionString: pg.url,
    max: 4,
    application_name: options.applicationName ?? 'tcc-write-batch-test',
  });
  pool.on('error', () => {});
  const sent: string[] = [];
  const texts = new Map<string, string>();
  // The store checks a connection out for each statement (see client.ts, onPool): the names
  // of the statements sent on them are what it sent.
  pool.on('acquire', (connection) => {
    const wrapped = connection as unknown as { query: unknown; tccSeen?: true };
    if (wrapped.tccSeen) return;
    wrapped.tccSeen = true;
    const query = connection.query.bind(connection) as (...args: unknown[]) => unknown;
    wrapped.query = (config: { name?: string; text?: string } | string, ...rest: unknown[]) => {
      if (typeof config === 'object' && config.name?.startsWith('tcc_')) {
        const name = config.name.replace(/^tcc_[0-9a-f]+_/, '');
        sent.push(name);
        if (config.text !== undefined) texts.set(name, config.text);
      }
      return query(config, ...rest);
    };
  });
  const storage = new SqlStorage({ client: pool, schema });
  await storage.migrate();
  return { schema, pool, storage, sent, texts, table: `"${schema}".tcc_transactions` };
}

/** Waits (within a generous bound) until `count` statements of `app` wait on a row lock. */
async function waitForLockWaits(app: string, count: number): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const { rows } = await pg.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`,
      [app],
    );
    if (rows[0]!.n >= count) return;
    if (Date.now() > deadline) throw new Error(`${count} statements of ${app} never waited on a lock`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function next(record: TransactionRecord, overrides: Partial<TransactionRecord> = {}): TransactionRecord {
  return {
    ...record,
    version: record.version + 1,
    status: 'CONFIRMING',
    retries: record.retries + 1,
    ...overrides,
  };
}

function finished(record: TransactionRecord, expiresAt: number): TransactionRecord {
  return next(record, { status: 'CONFIRMED', expiresAt });
}

async function versions(pool: pgDriver.Pool, table: string): Promise<Record<string, number>> {
  const { rows } = await pool.query<{ xid: string; version: number }>(`SELECT xid, version FROM ${table}`);
  return Object.fromEntries(rows.map((r) => [r.xid, r.version]));
}

async function errorOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (error: unknown) => error,
  );
}

describe('SqlStorage on PostgreSQL: the writes of one turn in one statement', () => {
  it('gives each write of a batch its own outcome: lost CAS and duplicates fail alone', async () => {
    const { pool, storage, sent, table } = await openStore();
    try {
      const [won, lost, removed, kept, dup, completed] = Array.from({ length: 6 }, () => makeRecord());
      for (const r of [won, lost, removed, kept, dup, completed]) await storage.create(r!);
      const fresh = makeRecord();
      sent.length = 0;
      const outcomes = await Promise.all([
        errorOf(storage.update(next(won!), 1)),
        errorOf(storage.update(next(lost!, { version: 3 }), 2)), // stored version is 1
        errorOf(storage.remove(removed!.xid, 1)),
        errorOf(storage.remove(kept!.xid, 5)),
        errorOf(storage.create(dup!)),
        errorOf(storage.create(fresh)),
        errorOf(storage.complete(finished(completed!, Date.now() + 3_600_000), 1)),
      ]);
      expect(outcomes[0]).toBeUndefined();
      expect(outcomes[1]).toBeInstanceOf(OptimisticLockError);
      expect(outcomes[1]).toMatchObject({ code: 'TCC_OPTIMISTIC_LOCK', xid: lost!.xid, expectedVersion: 2 });
      expect((outcomes[1] as Error).message).toContain('found version 1');
      expect(outcomes[2]).toBeUndefined();
      expect(outcomes[3]).toMatchObject({ code: 'TCC_OPTIMISTIC_LOCK', xid: kept!.xid, expectedVersion: 5 });
      expect(outcomes[4]).toBeInstanceOf(DuplicateTransactionError);
      expect(outcomes[4]).toMatchObject({ code: 'TCC_DUPLICATE_TRANSACTION' });
      expect(outcomes[5]).toBeUndefined();
      expect(outcomes[6]).toBeUndefined();
      // One statement wrote all seven; the two lost CAS then read the version for their error.
      expect(sent.filter((s) => s !== 'version')).toEqual(['batch']);
      expect(await versions(pool, table)).toEqual({
        [won!.xid]: 2,
        [lost!.xid]: 1,
        [kept!.xid]: 1,
        [dup!.xid]: 1,
        [fresh.xid]: 1,
        [completed!.xid]: 2,
      });
      expect(await storage.get(won!.xid)).toStrictEqual(next(won!));
      expect(await storage.get(dup!.xid)).toStrictEqual(dup);
      expect(await storage.get(completed!.xid)).toMatchObject({ status: 'CONFIRMED', version: 2 });
    } finally {
      await pool.end();
    }
  });

  it('replaces an expired tombstone in a batch, and refuses a create over one not yet expired', async () => {
    const schema = pg.schema();
    const clock = { now: () => 1_000_000 };
    const storage = new SqlStorage({ client: pg.pool, schema, clock });
    await storage.migrate();
    const [expiring, lasting] = [makeRecord(), makeRecord()];
    await Promise.all([storage.create(expiring), storage.create(lasting)]);
    await storage.complete(finished(expiring, 1_000_500), 1);
    await storage.complete(finished(lasting, 2_000_000), 1);
    clock.now = () => 1_000_501; // expiring's tombstone has expired, lasting's has not
    const again = makeRecord({ xid: expiring.xid, globalId: 'again' });
    const outcomes = await Promise.all([
      errorOf(storage.create(again)),
      errorOf(storage.create(makeRecord({ xid: lasting.xid }))),
      errorOf(storage.create(makeRecord())),
    ]);
    expect(outcomes[0]).toBeUndefined();
    expect(outcomes[1]).toBeInstanceOf(DuplicateTransactionError);
    expect(outcomes[2]).toBeUndefined();
    expect(await storage.get(expiring.xid)).toStrictEqual(again);
    expect(await storage.get(lasting.xid)).toMatchObject({ status: 'CONFIRMED', version: 2 });
  });

  it('sends a lone write as its own statement, as before', async () => {
    const { pool, storage, sent } = await openStore();
    try {
      const record = makeRecord();
      await storage.create(record);
      await storage.update(next(record), 1);
      await storage.remove(record.xid, 2);
      expect(sent).toEqual(['create', 'update', 'remove']);
    } finally {
      await pool.end();
    }
  });

  it('batches on a pg.Client given as client too', async () => {
    const schema = pg.schema();
    const client = new pgDriver.Client({ connectionString: pg.url });
    await client.connect();
    try {
      const storage = new SqlStorage({ client, schema });
      await storage.migrate();
      const records = [makeRecord(), makeRecord(), makeRecord()];
      await storage.create(records[0]!);
      const sent: string[] = [];
      const query = client.query.bind(client) as (config: unknown) => Promise<unknown>;
      (client as unknown as { query: unknown }).query = (config: { name?: string }) => {
        if (typeof config === 'object' && config.name !== undefined)
          sent.push(config.name.replace(/^tcc_[0-9a-f]+_/, ''));
        return query(config);
      };
      const outcomes = await Promise.all([
        errorOf(storage.create(records[1]!)),
        errorOf(storage.create(records[2]!)),
        errorOf(storage.create(records[0]!)),
      ]);
      expect(outcomes.slice(0, 2)).toEqual([undefined, undefined]);
      expect(outcomes[2]).toBeInstanceOf(DuplicateTransactionError);
      expect(sent).toEqual(['batch']);
      for (const r of records) expect(await storage.get(r.xid)).toStrictEqual(r);
    } finally {
      await client.end();
    }
  });

  it('keeps the order of writes to one xid in one turn; of two with one expected version one wins', async () => {
    const { pool, storage, table } = await openStore();
    try {
      const [a, b] = [makeRecord(), makeRecord()];
      const other = makeRecord();
      await Promise.all([storage.create(a), storage.create(b)]);
      const a2 = next(a);
      const a3 = next(a2, { status: 'CANCELLING' });
      const outcomes = await Promise.all([
        errorOf(storage.update(a2, 1)),
        errorOf(storage.update(next(b), 1)),
        errorOf(storage.update(a3, 2)), // after a2, in the same turn
        errorOf(storage.update(next(b, { retries: 9 }), 1)), // the same CAS as b's first: loses
        errorOf(storage.create(other)),
      ]);
      expect(outcomes[0]).toBeUndefined();
      expect(outcomes[1]).toBeUndefined();
      expect(outcomes[2]).toBeUndefined();
      expect(outcomes[3]).toMatchObject({ code: 'TCC_OPTIMISTIC_LOCK', xid: b.xid, expectedVersion: 1 });
      expect(outcomes[4]).toBeUndefined();
      expect(await storage.get(a.xid)).toStrictEqual(a3);
      expect(await storage.get(b.xid)).toStrictEqual(next(b));
      expect(await versions(pool, table)).toEqual({ [a.xid]: 3, [b.xid]: 2, [other.xid]: 1 });
    } finally {
      await pool.end();
    }
  });

  it('runs each write alone when the server refuses the batch: only the write that fails alone fails', async () => {
    const { pool, storage, sent, table } = await openStore();
    try {
      // A rule of the database the store does not know of: refuses one record of the batch.
      await pool.query(`ALTER TABLE ${table} ADD CONSTRAINT no_poison CHECK (domain <> 'poison')`);
      const existing = makeRecord();
      await storage.create(existing);
      const good = makeRecord();
      const poison = makeRecord({ domain: 'poison' });
      sent.length = 0;
      const outcomes = await Promise.all([
        errorOf(storage.create(good)),
        errorOf(storage.create(poison)),
        errorOf(storage.update(next(existing), 1)),
      ]);
      expect(outcomes[0]).toBeUndefined();
      expect(outcomes[1]).toBeInstanceOf(StorageError);
      expect(outcomes[1]).toMatchObject({ code: 'TCC_STORAGE' });
      expect((outcomes[1] as Error).message).toMatch(/SqlStorage\.create .*no_poison.*\[SQLSTATE 23514\]/);
      expect(outcomes[2]).toBeUndefined();
      expect(sent.sort()).toEqual(['batch', 'create', 'create', 'update']);
      expect(await versions(pool, table)).toEqual({ [existing.xid]: 2, [good.xid]: 1 });
    } finally {
      await pool.end();
    }
  });

  it('fails every write of a batch whose connection dies, and writes none of it', async () => {
    const app = `tcc-write-batch-${randomBytes(4).toString('hex')}`;
    const { pool, storage, table } = await openStore({ applicationName: app });
    const locker = new pgDriver.Client({ connectionString: pg.url });
    await locker.connect();
    try {
      const records = [makeRecord(), makeRecord(), makeRecord()];
      for (const r of records) await storage.create(r);
      const fresh = makeRecord();
      // Hold one row, so the batch statement waits on it while its connection is terminated.
      await locker.query('BEGIN');
      await locker.query(`SELECT 1 FROM ${table} WHERE xid = $1 FOR UPDATE`, [records[2]!.xid]);
      const writes = [
        errorOf(storage.update(next(records[0]!), 1)),
        errorOf(storage.remove(records[1]!.xid, 1)),
        errorOf(storage.update(next(records[2]!), 1)),
        errorOf(storage.create(fresh)),
      ];
      const deadline = Date.now() + 30_000;
      for (;;) {
        const { rows } = await pg.pool.query<{ pid: number }>(
          `SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`,
          [app],
        );
        if (rows.length > 0) {
          await pg.pool.query('SELECT pg_terminate_backend($1)', [rows[0]!.pid]);
          break;
        }
        if (Date.now() > deadline) throw new Error('the batch never waited on the held row');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const outcomes = await Promise.all(writes);
      await locker.query('ROLLBACK');
      for (const error of outcomes) {
        expect(error).toBeInstanceOf(StorageError);
        expect(error).toMatchObject({ code: 'TCC_STORAGE' });
        expect((error as Error).message).toMatch(/terminat/i);
      }
      expect(await versions(pg.pool, table)).toEqual(Object.fromEntries(records.map((r) => [r.xid, 1])));
      // The store goes on with the pool's other connections.
      await storage.update(next(records[0]!), 1);
      expect(await storage.get(records[0]!.xid)).toStrictEqual(next(records[0]!));
    } finally {
      await locker.end();
      await pool.end();
    }
  });
  it('plans the batch statement once: its generic plan looks each write up by the primary key', async () => {
    const { pool, storage, texts, table } = await openStore();
    try {
      // A log of some size, so that a plan that reads the whole table would be seen.
      await pool.query(
        `INSERT INTO ${table} (xid, global_id, domain, type, status, version, retries, created_at, updated_at, deadline, due_at, record)
         SELECT 'old-' || i, 'old-' || i, 'bench', 'ROOT', 'TRYING', 1, 0, 0, 0, 0, 0, '{}' FROM generate_series(1, 5000) AS i`,
      );
      await pool.query(`ANALYZE ${table}`);
      const records = [makeRecord(), makeRecord(), makeRecord()];
      await Promise.all(records.map((r) => storage.create(r)));
      const text = texts.get('batch');
      expect(text).toBeDefined();
      const connection = await pool.connect();
      try {
        await connection.query({ name: 'plan_probe', text: text!, values: ['[]', '[]', '[]'] });
        const write = (xid: string, expected: number) => JSON.stringify([{ xid, expected, now: 1 }]);
        // PostgreSQL plans a prepared statement for its values five times, then keeps a generic
        // plan if that is no costlier; a batch sized by its values would be planned every time.
        for (let i = 0; i < 6; i++) {
          await connection.query({
            name: 'plan_probe',
            text: text!,
            values: ['[]', write(`none-${i}`, 1), '[]'],
          });
        }
        const { rows } = await connection.query<{ 'QUERY PLAN': string }>(
          `EXPLAIN (VERBOSE) EXECUTE plan_probe('[]', '${write('none', 1)}', '${write('none', 1)}')`,
        );
        const plan = rows.map((r) => r['QUERY PLAN']).join('\n');
        // The generic plan shows the parameters, a plan for these values their JSON.
        expect(plan).toMatch(/json_to_recordset\(\$2\)/);
        expect(plan).not.toMatch(/Seq Scan on \S*tcc_transactions/);
        expect(plan.match(/Index Scan using tcc_transactions_pkey/g)).toHaveLength(2); // update, remove
      } finally {
        await connection.query('DEALLOCATE plan_probe');
        connection.release();
      }
    } finally {
      await pool.end();
    }
  });
  it('refuses a number JSON cannot hold in a batch, so each write fails alone as its statement would', async () => {
    const { pool, storage, sent, table } = await openStore();
    try {
      const good = makeRecord();
      const bad = makeRecord({ parkedAt: Number.NaN });
      sent.length = 0;
      const outcomes = await Promise.all([errorOf(storage.create(good)), errorOf(storage.create(bad))]);
      expect(outcomes[0]).toBeUndefined();
      // Not written as NULL: the single statement refuses NaN for a bigint column.
      expect(outcomes[1]).toBeInstanceOf(StorageError);
      expect((outcomes[1] as Error).message).toMatch(/NaN/);
      expect(sent.sort()).toEqual(['create', 'create']);
      expect(await versions(pool, table)).toEqual({ [good.xid]: 1 });
    } finally {
      await pool.end();
    }
  });
  it('sends at most two statements at once: writes issued while both wait go together once one is back', async () => {
    const app = `tcc-write-batch-two-${process.pid}`;
    const { pool, storage, sent, table } = await openStore({ applicationName: app });
    const locker = new pgDriver.Client({ connectionString: pg.url });
    await locker.connect();
    try {
      const held = [makeRecord(), makeRecord()];
      const others = [makeRecord(), makeRecord(), makeRecord()];
      for (const r of [...held, ...others]) await storage.create(r);
      // Hold two rows, so that the statements writing them wait on their locks.
      await locker.query('BEGIN');
      await locker.query(`SELECT 1 FROM ${table} WHERE xid = ANY($1) FOR UPDATE`, [held.map((r) => r.xid)]);
      sent.length = 0;
      const first = errorOf(storage.update(next(held[0]!), 1));
      await waitForLockWaits(app, 1);
      const second = errorOf(storage.update(next(held[1]!), 1));
      await waitForLockWaits(app, 2);
      // Both statements are out: these wait for one to come back, over several turns.
      const later = [errorOf(storage.update(next(others[0]!), 1))];
      await new Promise((resolve) => setImmediate(resolve));
      later.push(errorOf(storage.update(next(others[1]!), 1)), errorOf(storage.remove(others[2]!.xid, 1)));
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(sent).toEqual(['update', 'update']);
      await locker.query('ROLLBACK');
      expect(await Promise.all([first, second, ...later])).toEqual([
        undefined,
        undefined,
        undefined,
        undefined,
        undefined,
      ]);
      // The three waiting writes left together, in one statement.
      expect(sent).toEqual(['update', 'update', 'batch']);
      expect(await versions(pool, table)).toEqual({
        [held[0]!.xid]: 2,
        [held[1]!.xid]: 2,
        [others[0]!.xid]: 2,
        [others[1]!.xid]: 2,
      });
    } finally {
      await locker.end();
      await pool.end();
    }
  });
});
