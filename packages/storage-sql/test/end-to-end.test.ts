import { ConfirmFailedError, Tcc } from '@tcc/core';
import { CountingStorage } from '@tcc/core/testing';
import { SqlStorage } from '@tcc/storage-sql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPGlite, type PGliteHarness } from '../../../test/support/pglite.js';
import { openPostgres, type PostgresHarness } from '../../../test/support/postgres.js';

let pg: PostgresHarness;
let lite: PGliteHarness;

beforeAll(async () => {
  [pg, lite] = await Promise.all([openPostgres(), openPGlite()]);
});
afterAll(async () => {
  await Promise.all([pg?.end(), lite?.close()]);
});

const backends: [string, () => SqlStorage][] = [
  ['PostgreSQL', () => new SqlStorage({ client: pg.pool, schema: pg.schema() })],
  ['PGlite', () => new SqlStorage({ client: lite.db, table: lite.table() })],
];

describe.each(backends)('a real Tcc on SqlStorage (%s)', (_name, makeStorage) => {
  async function setup(recovery: { recoverAfterMs?: number } = {}) {
    const sql = makeStorage();
    await sql.migrate();
    const storage = new CountingStorage(sql);
    const tcc = new Tcc({ domain: 'order', storage, recovery });
    const calls: string[] = [];
    let failConfirmOnce = false;
    const step = (name: string) =>
      tcc.compensable(name, {
        try: async (id: string) => {
          calls.push(`${name}.try:${id}`);
          if (id === 'overdrawn') throw new Error(`${name}: overdrawn`);
        },
        confirm: async (id: string) => {
          if (name === 'b' && failConfirmOnce) {
            failConfirmOnce = false;
            calls.push(`${name}.confirm!`);
            throw new Error('warehouse down');
          }
          calls.push(`${name}.confirm:${id}`);
        },
        cancel: async (id: string) => {
          calls.push(`${name}.cancel:${id}`);
        },
      });
    return {
      sql,
      storage,
      tcc,
      calls,
      a: step('a'),
      b: step('b'),
      failNextConfirm: () => {
        failConfirmOnce = true;
      },
    };
  }

  it('confirms both participants in k + 2 writes and leaves nothing behind', async () => {
    const { storage, tcc, calls, a, b } = await setup();
    await tcc.transaction(async () => {
      await a('1');
      await b('1');
    });
    expect(calls).toEqual(['a.try:1', 'b.try:1', 'a.confirm:1', 'b.confirm:1']);
    expect(storage.writes, storage.log.join(', ')).toBe(2 + 2);
    expect(storage.log).toEqual(['create TRYING', 'update TRYING', 'update CONFIRMING', 'remove']);
    expect(await storage.count({})).toBe(0);
    await tcc.stop();
  });

  it('cancels the tries when one fails, and leaves nothing behind', async () => {
    const { storage, tcc, calls, a, b } = await setup();
    await expect(
      tcc.transaction(async () => {
        await a('1');
        await b('overdrawn');
      }),
    ).rejects.toThrow('b: overdrawn');
    expect(calls).toEqual(['a.try:1', 'b.try:overdrawn', 'b.cancel:overdrawn', 'a.cancel:1']);
    expect(await storage.count({})).toBe(0);
    await tcc.stop();
  });

  it('keeps a partly failed confirm CONFIRMING in the table, and tcc.recover finishes only the rest', async () => {
    // recoverAfterMs 0: the recover() below comes right after the failed confirm.
    const { sql, tcc, calls, a, b, failNextConfirm } = await setup({ recoverAfterMs: 0 });
    failNextConfirm();
    const error = await tcc
      .transaction(async () => {
        await a('1');
        await b('1');
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfirmFailedError);

    const [record] = (await sql.list({})).records;
    expect(record?.status).toBe('CONFIRMING');
    expect(record?.participants.map((p) => p.status)).toEqual(['CONFIRMED', 'TRYING']);
    expect(record?.lastError).toContain('warehouse down');
    const stuck = await sql.findStuck({ domain: 'order', updatedBefore: Date.now() + 1, limit: 10 });
    expect(stuck.records.map((r) => r.xid)).toEqual([record!.xid]);

    const result = await tcc.recover(record!.xid);
    expect(result.outcome).toBe('confirmed');
    expect(calls.filter((c) => c.includes('.confirm'))).toEqual(['a.confirm:1', 'b.confirm!', 'b.confirm:1']);
    expect(await sql.count({})).toBe(0);
    await tcc.stop();
  });
});
