import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JsonCodec, type TransactionRecord } from '@tcc/core';
import { makeRecord } from '@tcc/core/testing';
import { RedisStorage } from '@tcc/storage-redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRedis, type RedisHarness } from '../../../test/support/redis.js';
import { buildRecovery, SHOP_CONFIG, tccCli } from './support.js';

let redis: RedisHarness;
let prefix: string;
let storage: RedisStorage;
let env: NodeJS.ProcessEnv;
let dir: string;
const codec = new JsonCodec();
const HOUR = 3_600_000;

beforeAll(async () => {
  [redis] = await Promise.all([openRedis(), buildRecovery()]);
  prefix = redis.prefix();
  storage = new RedisStorage({ client: redis.client, prefix });
  env = { TCC_TEST_PREFIX: prefix, REDIS_URL: redis.url, TCC_CONFIG: SHOP_CONFIG };
  dir = await mkdtemp(join(tmpdir(), 'tcc-cli-'));
});
afterAll(async () => {
  await redis?.end();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A stored record of domain shop whose one participant is `target` with argument `id`. */
async function stored(
  status: TransactionRecord['status'],
  id: string,
  overrides: Partial<TransactionRecord> = {},
  target = 'shop.pay',
): Promise<TransactionRecord> {
  const record = makeRecord({
    domain: 'shop',
    status,
    createdAt: Date.now() - HOUR,
    updatedAt: Date.now() - HOUR,
    deadline: Date.now() - HOUR / 2,
    participants: [
      {
        id: 'p1',
        kind: 'local',
        target,
        confirm: 'confirm',
        cancel: 'cancel',
        args: codec.encode([id]),
        status: 'TRYING',
      },
    ],
    ...overrides,
  });
  await storage.create(record);
  return record;
}

const tcc = (...args: string[]) => tccCli(args, env);
const applied = () => redis.client.hgetall(`${prefix}{fx}:applied`);

describe('tccctl ls and show', () => {
  it('lists records as a table, as JSON, and filtered by status and parked', async () => {
    const a = await stored('CONFIRMING', 'ls-a');
    const b = await stored('CANCELLING', 'ls-b', {
      parkedAt: Date.now(),
      retries: 3,
      lastError: 'card declined',
    });
    const [table, json, parked, cancelling] = await Promise.all([
      tcc('ls'),
      tcc('ls', '--json', '--all'),
      tcc('ls', '--parked', '--json'),
      tcc('ls', '--status', 'cancelling', '--json', '--domain', 'shop'),
    ]);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/^XID\s+TYPE\s+STATUS\s+DOMAIN\s+RETRIES\s+UPDATED\s+PARKED\s+LAST ERROR/);
    expect(table.stdout).toContain(a.xid);
    expect(table.stdout).toMatch(new RegExp(`${b.xid}\\s+ROOT\\s+CANCELLING\\s+shop\\s+3 .*card declined`));
    const xids = (r: { stdout: string }) => (JSON.parse(r.stdout) as { xid: string }[]).map((x) => x.xid);
    expect(xids(json)).toEqual(expect.arrayContaining([a.xid, b.xid]));
    expect(xids(parked)).toContain(b.xid);
    expect(xids(parked)).not.toContain(a.xid);
    expect(xids(cancelling)).toContain(b.xid);
    expect(xids(cancelling)).not.toContain(a.xid);
  });

  it('refuses a bad --status or --limit (exit 2)', async () => {
    const [status, limit] = await Promise.all([tcc('ls', '--status', 'DONE'), tcc('ls', '--limit', '0')]);
    expect(status).toMatchObject({ code: 2 });
    expect(status.stderr).toMatch(/--status must be one of TRYING, .*got "DONE"/);
    expect(limit).toMatchObject({ code: 2 });
    expect(limit.stderr).toMatch(/--limit must be a positive integer, got "0"/);
  });

  it('shows a record with its participants and decoded arguments; a wrong xid exits 4', async () => {
    const r = await stored('CONFIRMING', 'show-1', { retries: 2, lastError: 'boom' });
    const [text, json, wrong, missing] = await Promise.all([
      tcc('show', r.xid),
      tcc('show', r.xid, '--json'),
      tcc('show', 'no-such-xid'),
      tcc('show'),
    ]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/status\s+CONFIRMING/);
    expect(text.stdout).toMatch(/retries\s+2/);
    expect(text.stdout).toMatch(/lastError\s+boom/);
    expect(text.stdout).toMatch(/p1\s+local\s+TRYING\s+shop\.pay\s+confirm\/cancel\s+\[ 'show-1' \]/);
    expect(JSON.parse(json.stdout)).toMatchObject({ xid: r.xid, status: 'CONFIRMING', retries: 2 });
    expect(wrong).toMatchObject({ code: 4 });
    expect(wrong.stderr).toContain('no transaction record with xid "no-such-xid"');
    expect(missing).toMatchObject({ code: 2 });
    expect(missing.stderr).toMatch(/show needs one xid/);
  });
});

describe('tccctl retry, confirm, cancel, unpark', () => {
  it('retry drives a stuck record now (exit 0), a failing one exits 6, a wrong xid 4', async () => {
    const ok = await stored('CONFIRMING', 'retry-ok', { parkedAt: Date.now(), retries: 3 });
    const bad = await stored('CONFIRMING', 'retry-bad', {}, 'shop.broken');
    const [done, failed, wrong] = await Promise.all([
      tcc('retry', ok.xid, '--json'),
      tcc('retry', bad.xid),
      tcc('retry', 'no-such-xid'),
    ]);
    expect(done.code, done.stderr).toBe(0);
    expect(JSON.parse(done.stdout)).toMatchObject({ xid: ok.xid, outcome: 'confirmed' });
    expect(await storage.get(ok.xid)).toBeUndefined();
    expect(await applied()).toHaveProperty(['pay.confirm:retry-ok']);
    expect(failed.code).toBe(6);
    expect(failed.stdout).toMatch(/failed .*warehouse is on fire/);
    expect((await storage.get(bad.xid))?.retries).toBe(1);
    expect(wrong.code).toBe(4);
  });

  it('refuses a confirm or cancel that contradicts a commit point, writing nothing (exit 5)', async () => {
    const cancelling = await stored('CANCELLING', 'refuse-1');
    const confirming = await stored('CONFIRMING', 'refuse-2');
    const trying = await stored('TRYING', 'refuse-3');
    const [c1, c2, c3] = await Promise.all([
      tcc('confirm', cancelling.xid),
      tcc('cancel', confirming.xid, '--json'),
      tcc('confirm', trying.xid),
    ]);
    expect(c1.code).toBe(5);
    expect(c1.stderr).toMatch(/refused \(commit-point\): .* is CANCELLING: its commit point says cancel/);
    expect(c2.code).toBe(5);
    expect(JSON.parse(c2.stdout)).toMatchObject({ error: { code: 'TCC_OPERATOR_REFUSED' } });
    expect(c3.code).toBe(5);
    expect(c3.stderr).toMatch(/refused \(try-not-known\): .* shop\.pay is not known to have succeeded/);
    for (const r of [cancelling, confirming, trying]) {
      expect(await storage.get(r.xid)).toMatchObject({ status: r.status, version: r.version });
    }
    expect(Object.keys(await applied()).filter((k) => k.includes('refuse'))).toEqual([]);
  });

  it('cancels a TRYING root and confirms a TRIED branch (exit 0), then says they are done', async () => {
    const root = await stored('TRYING', 'decide-1');
    const branch = await stored('TRIED', 'decide-2', { type: 'BRANCH', rootDomain: 'order' });
    const [cancel, confirm] = await Promise.all([
      tcc('cancel', root.xid),
      tcc('confirm', branch.xid, '--json'),
    ]);
    expect(cancel.code, cancel.stderr).toBe(0);
    expect(cancel.stdout).toMatch(/CANCELLING written; .*: cancelled/);
    expect(confirm.code, confirm.stderr).toBe(0);
    expect(JSON.parse(confirm.stdout)).toMatchObject({ wrote: true, recovery: { outcome: 'confirmed' } });
    expect(await applied()).toMatchObject({
      'pay.cancel:decide-1': expect.any(String),
      'pay.confirm:decide-2': expect.any(String),
    });
    expect(await storage.get(root.xid)).toBeUndefined();
    const again = await tcc('confirm', branch.xid); // its CONFIRMED tombstone
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/already CONFIRMED/);
  });

  it('unparks a parked record (status kept, retries reset) and refuses one not parked', async () => {
    const parked = await stored('CONFIRMING', 'unpark-1', {
      parkedAt: Date.now(),
      retries: 30,
      lastError: 'x',
    });
    const live = await stored('CONFIRMING', 'unpark-2');
    const [ok, refused] = await Promise.all([tcc('unpark', parked.xid), tcc('unpark', live.xid)]);
    expect(ok.code, ok.stderr).toBe(0);
    const after = await storage.get(parked.xid);
    expect(after).toMatchObject({ status: 'CONFIRMING', retries: 0, updatedAt: parked.updatedAt });
    expect(after?.parkedAt).toBeUndefined();
    expect(after?.lastError).toBeUndefined();
    expect(refused.code).toBe(5);
    expect(refused.stderr).toMatch(/refused \(not-parked\)/);
    expect(await storage.get(live.xid)).toMatchObject({ version: live.version });
  });
});

describe('tccctl purge and migrate', () => {
  it('purges tombstones older than the given age only', async () => {
    const old = await stored('CONFIRMED', 'purge-1', { expiresAt: Date.now() + HOUR });
    const recent = await stored('CANCELLED', 'purge-2', {
      updatedAt: Date.now(),
      expiresAt: Date.now() + HOUR,
    });
    const live = await stored('CONFIRMING', 'purge-3');
    const dry = await tcc('purge', '--older-than', '30m', '--dry-run', '--json');
    expect(JSON.parse(dry.stdout)).toMatchObject({ purged: 1, dryRun: true });
    expect(await storage.get(old.xid)).toBeDefined();
    const run = await tcc('purge', '--older-than', '30m');
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/purged 1 of \d+ tombstones/);
    expect(await storage.get(old.xid)).toBeUndefined();
    expect(await storage.get(recent.xid)).toBeDefined();
    expect(await storage.get(live.xid)).toBeDefined();
  });

  it('refuses purge without --older-than or with a bad duration (exit 2)', async () => {
    const [none, bad] = await Promise.all([tcc('purge'), tcc('purge', '--older-than', 'soon')]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/purge needs --older-than/);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--older-than must be a duration like 30s/);
  });

  it('migrate checks the schema (exit 0)', async () => {
    const r = await tcc('migrate');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/RedisStorage: schema up to date/);
  });
});

describe('bad command lines and configs', () => {
  it('a missing config, one without a Tcc, one that throws: exit 3 with the reason', async () => {
    const notTcc = join(dir, 'not-tcc.mjs');
    const throws = join(dir, 'throws.mjs');
    await writeFile(notTcc, 'export default { domain: "shop" };\n');
    await writeFile(throws, 'throw new Error("no database url");\n');
    const [missing, wrong, thrown] = await Promise.all([
      tcc('ls', '--config', join(dir, 'nope.js')),
      tcc('ls', '--config', notTcc),
      tcc('ls', '--config', throws, '--json'),
    ]);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toContain(`config file not found: ${join(dir, 'nope.js')}`);
    expect(wrong.code).toBe(3);
    expect(wrong.stderr).toMatch(/must export a Tcc instance .*got an object \(Object\)/);
    expect(thrown.code).toBe(3);
    expect(JSON.parse(thrown.stdout)).toMatchObject({
      error: { code: 'TCC_CONFIG', message: expect.stringMatching(/no database url/) },
    });
  });

  it('unknown command, unknown flag, a flag of another command, bad worker option: exit 2', async () => {
    const results = await Promise.all([
      tcc('frobnicate'),
      tcc('ls', '--colour'),
      tcc('show', 'x', '--parked'),
      tcc('worker', '--concurrency', '0'),
      tcc(),
    ]);
    expect(results.map((r) => r.code)).toEqual([2, 2, 2, 2, 2]);
    expect(results[0]!.stderr).toMatch(/unknown command "frobnicate"/);
    expect(results[1]!.stderr).toMatch(/Unknown option '--colour'/);
    expect(results[2]!.stderr).toMatch(/show does not take --parked/);
    expect(results[3]!.stderr).toMatch(/--concurrency must be a positive integer, got "0"/);
    expect(results[4]!.stdout).toMatch(/usage: tccctl <command>/);
  });

  it('worker with a queue connection lacking maxRetriesPerRequest: null exits 2 and says why', async () => {
    const config = SHOP_CONFIG.replace('shop.config.mjs', 'bad-connection.config.mjs');
    const r = await tcc('worker', '--config', config);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/must be created with maxRetriesPerRequest: null/);
  });
});
