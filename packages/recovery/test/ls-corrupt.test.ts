import { fileURLToPath } from 'node:url';
import type { TransactionRecord } from '@tcc/core';
import { makeRecord } from '@tcc/core/testing';
import { RedisStorage } from '@tcc/storage-redis';
import { SqlStorage } from '@tcc/storage-sql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgres, type PostgresHarness } from '../../../test/support/postgres.js';
import { openRedis, type RedisHarness } from '../../../test/support/redis.js';
import { buildRecovery, SHOP_CONFIG, tccCli } from './support.js';

const SQL_CONFIG = fileURLToPath(new URL('./fixtures/sql.config.mjs', import.meta.url));
const HOUR = 3_600_000;

let redis: RedisHarness;
let pg: PostgresHarness;

beforeAll(async () => {
  [redis, pg] = await Promise.all([openRedis(), openPostgres(), buildRecovery()]);
});
afterAll(async () => {
  await Promise.all([redis?.end(), pg?.end()]);
});

interface Listing {
  error: { code: string; message: string };
  corrupt: { key: string; reason: string }[];
  records: { xid: string }[];
}

/** `n` readable records of domain shop, written through `storage`. */
async function good(storage: { create(r: TransactionRecord): Promise<void> }, n: number): Promise<string[]> {
  const xids: string[] = [];
  for (let i = 0; i < n; i++) {
    const record = makeRecord({ domain: 'shop', status: 'CONFIRMING', createdAt: Date.now() - HOUR + i });
    await storage.create(record);
    xids.push(record.xid);
  }
  return xids;
}

const byKey = (a: { key: string }, b: { key: string }) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);

describe('tccctl ls on a Redis store with corrupt records', () => {
  async function store() {
    const prefix = redis.prefix();
    const storage = new RedisStorage({ client: redis.client, prefix });
    const env = { TCC_TEST_PREFIX: prefix, REDIS_URL: redis.url, TCC_CONFIG: SHOP_CONFIG };
    return { storage, env };
  }

  async function damaged() {
    const { storage, env } = await store();
    const readable = await good(storage, 3);
    const [notJson, notHash] = await good(storage, 2);
    const keys = { notJson: storage.locate(notJson!).key, notHash: storage.locate(notHash!).key };
    await redis.client.hset(keys.notJson, 'r', '{"xid": nope');
    await redis.client.del(keys.notHash);
    await redis.client.set(keys.notHash, 'not a hash');
    return { env, readable, keys };
  }

  it('--json: lists the readable records, names the corrupt ones and why, exits 8', async () => {
    const { env, readable, keys } = await damaged();
    for (const args of [
      ['ls', '--json'],
      ['ls', '--json', '--all'],
    ]) {
      const r = await tccCli(args, env);
      expect(r.code, r.stderr).toBe(8);
      const listing = JSON.parse(r.stdout) as Listing;
      expect(listing.records.map((x) => x.xid).sort()).toEqual([...readable].sort());
      expect(listing.corrupt.sort(byKey)).toEqual(
        [
          { key: keys.notJson, reason: expect.stringMatching(/not JSON/) },
          { key: keys.notHash, reason: expect.stringMatching(/not a hash/) },
        ].sort(byKey),
      );
      expect(listing.error.code).toBe('TCC_CORRUPT_RECORDS');
      expect(listing.error.message).toMatch(
        /^2 stored records could not be read \(corrupt\) and were left out: /,
      );
      expect(listing.error.message).toContain(keys.notJson);
      expect(listing.error.message).toContain(keys.notHash);
      expect(r.stderr).toContain(`tccctl: ${listing.error.message}`);
    }
  });

  it('table: the readable records, then the corrupt ones with their problem; exits 8', async () => {
    const { env, readable, keys } = await damaged();
    const r = await tccCli(['ls'], env);
    expect(r.code, r.stderr).toBe(8);
    const [records, corrupt] = r.stdout.split('\n\n');
    expect(records).toMatch(/^XID\s+TYPE\s+STATUS/);
    for (const xid of readable) expect(records).toContain(xid);
    expect(corrupt).toMatch(/^CORRUPT RECORD\s+PROBLEM/);
    expect(corrupt).toMatch(new RegExp(`${literal(keys.notJson)}\\s+not JSON`));
    expect(corrupt).toMatch(new RegExp(`${literal(keys.notHash)}\\s+not a hash`));
    expect(r.stderr).toMatch(/^3 records$/m);
    expect(r.stderr).toMatch(/tccctl: 2 stored records could not be read \(corrupt\) and were left out: /);
  });

  it('only corrupt records: no "no records", the corrupt ones named, exits 8', async () => {
    const { storage, env } = await store();
    const [xid] = await good(storage, 1);
    const { key } = storage.locate(xid!);
    await redis.client.hset(key, 'r', 'null');
    const r = await tccCli(['ls'], env);
    expect(r.code, r.stderr).toBe(8);
    expect(r.stdout).toMatch(new RegExp(`^CORRUPT RECORD\\s+PROBLEM\\n${literal(key)}\\s+\\S`));
    expect(r.stderr).not.toContain('no records');
    expect(r.stderr).toContain(
      `tccctl: 1 stored record could not be read (corrupt) and was left out: ${key}`,
    );
  });

  it('a healthy store still lists as before: a JSON array, exit 0', async () => {
    const { storage, env } = await store();
    const readable = await good(storage, 2);
    const r = await tccCli(['ls', '--json'], env);
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { xid: string }[]).map((x) => x.xid).sort()).toEqual(readable.sort());
  });
});

describe('tccctl ls on a PostgreSQL store with corrupt records', () => {
  it('--json and table name the corrupt rows by xid and exit 8', async () => {
    const schema = pg.schema();
    const storage = new SqlStorage({ client: pg.pool, schema });
    await storage.migrate();
    const readable = await good(storage, 2);
    const [broken] = await good(storage, 1);
    await pg.pool.query(`UPDATE "${schema}".tcc_transactions SET record = $2 WHERE xid = $1`, [
      broken,
      'garbage',
    ]);
    const env = { TCC_TEST_SCHEMA: schema, DATABASE_URL: pg.url, TCC_CONFIG: SQL_CONFIG };
    const [json, text] = await Promise.all([tccCli(['ls', '--json'], env), tccCli(['ls'], env)]);

    expect(json.code, json.stderr).toBe(8);
    const listing = JSON.parse(json.stdout) as Listing;
    expect(listing.records.map((x) => x.xid).sort()).toEqual(readable.sort());
    expect(listing.corrupt).toEqual([{ key: broken, reason: expect.stringMatching(/not JSON/) }]);
    expect(listing.error).toMatchObject({ code: 'TCC_CORRUPT_RECORDS' });

    expect(text.code, text.stderr).toBe(8);
    expect(text.stdout).toMatch(new RegExp(`CORRUPT RECORD\\s+PROBLEM\\n${broken}\\s+not JSON`));
    expect(text.stderr).toContain(`could not be read (corrupt) and was left out: ${broken}`);
  });
});

function literal(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
