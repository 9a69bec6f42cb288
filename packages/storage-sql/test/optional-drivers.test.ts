import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgres, type PostgresHarness } from '../../../test/support/postgres.js';

/*
 * `pg` and `@electric-sql/pglite` are optional peer dependencies: an app installs the one it
 * uses. Each app here is bundled with esbuild into a folder outside the repository where the
 * other driver cannot be found, so a static import of it anywhere in the store would fail the
 * app at load time.
 */

const packageDir = fileURLToPath(new URL('..', import.meta.url));
const repoModules = fileURLToPath(new URL('../../../node_modules/', import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'tcc-optional-drivers-'));

// One transaction on the store, then what the other driver's entry point says when asked for.
const RUN = `
const tcc = new Tcc({ domain: 'drivers', storage });
const steps = [];
const reserve = tcc.compensable('stock.reserve', {
  try: async () => { steps.push('try'); },
  confirm: async () => { steps.push('confirm'); },
  cancel: async () => { steps.push('cancel'); },
});
await storage.migrate();
await tcc.transaction(async () => { await reserve(); });
const left = await storage.count({});
await tcc.stop();
await storage.close();
`;

const PG_ONLY = `
import pg from 'pg';
import { Tcc } from '@tcc/core';
import { SqlStorage } from '@tcc/storage-sql';
const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 2 });
const storage = new SqlStorage({ client: pool, schema: process.env.TCC_SCHEMA });
${RUN}
await pool.end();
const embedded = new SqlStorage({ dataDir: process.env.TCC_DATA_DIR });
const pglite = await embedded.migrate().then(() => 'opened', (error) => error.message);
console.log(JSON.stringify({ steps, left, pglite }));
`;

const PGLITE_ONLY = `
import { Tcc } from '@tcc/core';
import { SqlStorage } from '@tcc/storage-sql';
const storage = new SqlStorage({ dataDir: process.env.TCC_DATA_DIR });
${RUN}
const pg = await import('pg').then(() => 'found', (error) => error.code);
console.log(JSON.stringify({ steps, left, pg }));
`;

/** Bundles `app` into `<scratch>/<name>/dist/app.mjs`, leaving `external` to be found at run time. */
async function bundle(name: string, app: string, external: string[]): Promise<string> {
  const outfile = join(scratch, name, 'dist', 'app.mjs');
  await build({
    stdin: { contents: app, loader: 'ts', resolveDir: packageDir, sourcefile: `${name}.ts` },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outfile,
    // The packages' source, as every test here uses (`@tcc/source`): no build needed first.
    conditions: ['@tcc/source'],
    external,
    // pg is CommonJS and requires Node's modules; an ESM bundle needs a `require` for them.
    banner: {
      js: "import { createRequire as bundleRequire } from 'node:module'; const require = bundleRequire(import.meta.url);",
    },
    logLevel: 'silent',
  });
  return outfile;
}

async function run(app: string, env: Record<string, string>): Promise<unknown> {
  const { stdout } = await promisify(execFile)(process.execPath, [app], { env: { ...process.env, ...env } });
  return JSON.parse(stdout);
}

let postgres: PostgresHarness;
beforeAll(async () => {
  postgres = await openPostgres({ max: 2 });
});
afterAll(async () => {
  await postgres?.end();
  rmSync(scratch, { recursive: true, force: true });
});

describe('@tcc/storage-sql with one driver installed', () => {
  it('runs on a pg Pool without PGlite, and dataDir then says to install PGlite', async () => {
    // pg-native is pg's own optional addon, absent here as in most apps.
    const app = await bundle('pg-only', PG_ONLY, ['@electric-sql/pglite', 'pg-native']);
    expect(
      await run(app, {
        DATABASE_URL: postgres.url,
        TCC_SCHEMA: postgres.schema(),
        TCC_DATA_DIR: join(scratch, 'pg-only', 'data'),
      }),
    ).toEqual({
      steps: ['try', 'confirm'],
      left: 0,
      pglite: expect.stringContaining(
        'needs @electric-sql/pglite, an optional peer dependency of @tcc/storage-sql that is not installed',
      ),
    });
  });

  it('runs on PGlite in a directory without pg', async () => {
    const app = await bundle('pglite-only', PGLITE_ONLY, ['@electric-sql/pglite', 'pg']);
    // PGlite loads its WebAssembly from beside its own module, so it is installed, not bundled.
    mkdirSync(join(scratch, 'pglite-only', 'node_modules', '@electric-sql'), { recursive: true });
    symlinkSync(
      join(repoModules, '@electric-sql', 'pglite'),
      join(scratch, 'pglite-only', 'node_modules', '@electric-sql', 'pglite'),
    );
    expect(await run(app, { TCC_DATA_DIR: join(scratch, 'pglite-only', 'data') })).toEqual({
      steps: ['try', 'confirm'],
      left: 0,
      pg: 'ERR_MODULE_NOT_FOUND',
    });
  }, 120_000);
});
