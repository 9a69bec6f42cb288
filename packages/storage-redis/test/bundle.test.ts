import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRedis, type RedisHarness } from '../../../test/support/redis.js';

/*
 * An app bundled into one file (esbuild, as a serverless or container build does) carries the
 * store's Lua scripts in its JavaScript: the store used to read them from `../src/commands/`
 * next to its module at load time, which in a bundle is a folder that does not exist.
 */

const packageDir = fileURLToPath(new URL('..', import.meta.url));
// Outside the repository, so nothing the bundle left out could be found in node_modules.
const scratch = mkdtempSync(join(tmpdir(), 'tcc-bundle-'));

const APP = `
import { Tcc } from '@tcc/core';
import { RedisStorage } from '@tcc/storage-redis';
import { Redis } from 'ioredis';

const client = new Redis(process.env.REDIS_URL, { maxRetriesPerRequest: 1, connectTimeout: 2_000 });
const storage = new RedisStorage({ client, prefix: process.env.TCC_PREFIX });
const tcc = new Tcc({ domain: 'bundle', storage });
const steps = [];
const reserve = tcc.compensable('stock.reserve', {
  try: async (sku) => { steps.push('try ' + sku); if (sku === 'none') throw new Error('out of stock'); },
  confirm: async (sku) => { steps.push('confirm ' + sku); },
  cancel: async (sku) => { steps.push('cancel ' + sku); },
});
await tcc.transaction(async () => { await reserve('book'); });
const refused = await tcc.transaction(async () => { await reserve('none'); }).then(
  () => 'committed',
  (error) => error.message,
);
console.log(JSON.stringify({ steps, refused, left: await storage.count({}) }));
await tcc.stop();
await storage.close();
client.disconnect();
`;

let redis: RedisHarness;
beforeAll(async () => {
  redis = await openRedis();
});
afterAll(async () => {
  await redis?.end();
  rmSync(scratch, { recursive: true, force: true });
});

describe('an esbuild bundle of an app using RedisStorage', () => {
  it('runs a confirmed and a cancelled transaction from one file, with no .lua file beside it', async () => {
    const outfile = join(scratch, 'app.mjs');
    await build({
      stdin: { contents: APP, loader: 'ts', resolveDir: packageDir, sourcefile: 'app.ts' },
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      outfile,
      // The packages' source, as every test here uses (`@tcc/source`): no build needed first.
      conditions: ['@tcc/source'],
      // ioredis is CommonJS and requires Node's modules; an ESM bundle needs a `require` for them.
      banner: {
        js: "import { createRequire as bundleRequire } from 'node:module'; const require = bundleRequire(import.meta.url);",
      },
      logLevel: 'silent',
    });
    expect(readdirSync(scratch)).toEqual(['app.mjs']);

    const prefix = redis.prefix();
    const { stdout } = await promisify(execFile)(process.execPath, [outfile], {
      cwd: scratch,
      env: { ...process.env, REDIS_URL: redis.url, TCC_PREFIX: prefix },
    });
    expect(JSON.parse(stdout)).toEqual({
      steps: ['try book', 'confirm book', 'try none', 'cancel none'],
      refused: 'out of stock',
      left: 0,
    });
    // The records went through this Redis, under this prefix (its schema marker stays).
    expect(await redis.client.exists(`${prefix}meta`)).toBe(1);
  });
});
