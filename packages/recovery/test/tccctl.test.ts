import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { JsonCodec } from '@tcc/core';
import { makeRecord } from '@tcc/core/testing';
import { RedisStorage } from '@tcc/storage-redis';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRedis, type RedisHarness } from '../../../test/support/redis.js';
import { freePort, type RedisServers, startStandalone } from '../../../test/support/redis-servers.js';
import { OPTIONS } from '../src/cli/parse.js';
import { buildRecovery, type Child, CLI, SHOP_CONFIG, startChild, tccCli, until } from './support.js';

// The command line as a user meets it: the bin, its help and version, TypeScript configs,
// config errors with their place, a Redis that is down, and the worker's log and health check.
const TS_CONFIG = fileURLToPath(new URL('./fixtures/shop.config.ts', import.meta.url));
const HOUR = 3_600_000;
const codec = new JsonCodec();

let redis: RedisHarness;
let dir: string;
let n = 0;
const children: Child[] = [];

beforeAll(async () => {
  [redis] = await Promise.all([openRedis(), buildRecovery()]);
  dir = await mkdtemp(join(tmpdir(), 'tccctl-'));
});
afterAll(async () => {
  await Promise.all(children.map((c) => c.kill()));
  await redis?.end();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A domain of its own (a fresh prefix) holding `count` stuck CONFIRMING records. */
async function shop(count: number, client: Redis = redis.client, url = redis.url) {
  const prefix = `${redis.prefix()}c${n++}:`;
  const storage = new RedisStorage({ client, prefix });
  const xids: string[] = [];
  for (let i = 0; i < count; i++) {
    const record = makeRecord({
      domain: 'shop',
      status: 'CONFIRMING',
      createdAt: Date.now() - HOUR,
      updatedAt: Date.now() - HOUR,
      participants: [
        {
          id: 'p1',
          kind: 'local',
          target: 'shop.pay',
          confirm: 'confirm',
          cancel: 'cancel',
          args: codec.encode([`order-${n}-${i}`]),
          status: 'TRYING',
        },
      ],
    });
    await storage.create(record);
    xids.push(record.xid);
  }
  return { xids, env: { TCC_TEST_PREFIX: prefix, REDIS_URL: url, TCC_CONFIG: SHOP_CONFIG } };
}

describe('tccctl: help, version, plurals', () => {
  it('--version prints the package version; --help names every option of the parser', async () => {
    const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as {
      version: string;
      bin: Record<string, string>;
    };
    expect(pkg.bin).toEqual({ tccctl: './bin/tccctl.js' });
    const [version, help] = await Promise.all([tccCli(['--version'], {}), tccCli(['--help'], {})]);
    expect(version).toMatchObject({ code: 0, stdout: `${pkg.version}\n`, stderr: '' });
    expect(help.code).toBe(0);
    for (const name of Object.keys(OPTIONS)) expect(help.stdout).toContain(`--${name}`);
    expect(help.stdout).toMatch(/usage: tccctl <command>/);
    expect(help.stdout).toContain('tcc.config.ts');
  });

  it('says "1 record" and "2 records"', async () => {
    const [one, two] = await Promise.all([shop(1), shop(2)]);
    const [a, b] = await Promise.all([tccCli(['ls'], one.env), tccCli(['ls'], two.env)]);
    expect(a.code, a.stderr).toBe(0);
    expect(a.stderr).toBe('1 record\n');
    expect(b.stderr).toBe('2 records\n');
  });
});

describe('tccctl configs', () => {
  it('loads a TypeScript config (--config shop.config.ts)', async () => {
    const { xids, env } = await shop(1);
    const r = await tccCli(['ls', '--json', '--config', TS_CONFIG], env);
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { xid: string }[]).map((x) => x.xid)).toEqual(xids);
  });

  it('names the file, line and column of a config that does not compile (.mjs, an import of it, .ts)', async () => {
    const mjs = join(dir, 'broken.config.mjs');
    const imports = join(dir, 'imports.config.mjs');
    const ts = join(dir, 'broken.config.ts');
    await writeFile(mjs, 'export const a = 1;\nexport const b = {\n  x: 1,,\n};\n');
    await writeFile(imports, "import './broken.config.mjs';\nexport const tcc = 1;\n");
    await writeFile(ts, 'export const a: number = 1;\nexport const b = {\n  x: 1,,\n};\n');
    const [a, b, c] = await Promise.all([
      tccCli(['ls', '--config', mjs], {}),
      tccCli(['ls', '--config', imports], {}),
      tccCli(['ls', '--config', ts, '--json'], {}),
    ]);
    expect(a.code).toBe(3);
    expect(a.stderr).toContain(`cannot load config ${mjs}: ${mjs}:3:8: SyntaxError: Unexpected token ','`);
    expect(b.code).toBe(3);
    expect(b.stderr).toContain(`cannot load config ${imports}: ${mjs}:3:8: SyntaxError`);
    expect(c.code).toBe(3);
    expect(JSON.parse(c.stdout)).toMatchObject({
      error: {
        code: 'TCC_CONFIG',
        message: expect.stringContaining(`${ts}:3:7: SyntaxError: Unexpected token`),
      },
    });
  });

  it('a config whose code throws a SyntaxError of its own (JSON.parse) is not sent looking for a parse error', async () => {
    const file = join(dir, 'json.config.mjs');
    await writeFile(file, 'JSON.parse("{nope");\n');
    const r = await tccCli(['ls', '--config', file], {});
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/cannot load config .*json\.config\.mjs: .*JSON/);
    expect(r.stderr).not.toContain(':1:');
  });
});

describe('tccctl with Redis down', () => {
  it('prints its own message only, no "[ioredis] Unhandled error event"', async () => {
    const port = await freePort();
    const env = { TCC_TEST_PREFIX: 'down:', REDIS_URL: `redis://127.0.0.1:${port}`, TCC_CONFIG: SHOP_CONFIG };
    const [ls, worker] = await Promise.all([tccCli(['ls'], env), tccCli(['worker'], env)]);
    for (const r of [ls, worker]) {
      expect(r.code).toBe(1);
      expect(r.stderr).not.toContain('[ioredis]');
      expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/^tccctl: /);
    }
    expect(worker.stderr).toMatch(/the worker could not start: .*ECONNREFUSED/);
  });
});

describe('the bin in a fresh clone', () => {
  it('says in one line to build when dist/ is missing', async () => {
    const pkg = join(dir, 'fresh', 'packages', 'recovery');
    await mkdir(join(pkg, 'src', 'cli'), { recursive: true });
    await cp(CLI, join(pkg, 'bin', 'tccctl.js'));
    await writeFile(join(pkg, 'src', 'cli', 'main.ts'), '');
    const r = await startChild(join(pkg, 'bin', 'tccctl.js'), ['--version'], {});
    const code = await new Promise((resolve) => r.process.once('exit', resolve));
    expect(code).toBe(1);
    expect(r.output()).toBe(
      `tccctl: not built yet: run \`npm run build\` in ${join(dir, 'fresh')}/, then tccctl again\n`,
    );
  });
});

describe('tccctl worker: log lines and /healthz', () => {
  const get = async (port: number) => {
    try {
      return (await fetch(`http://127.0.0.1:${port}/healthz`)).status;
    } catch {
      return 0; // not listening yet
    }
  };

  it('logs one JSON line per recovered record and answers 200 while Redis is ready', async () => {
    const { xids, env } = await shop(1);
    const port = await freePort();
    const worker = startChild(CLI, ['worker', '--log', 'json', '--health-port', String(port)], env);
    children.push(worker);
    await worker.waitFor(`"xid":"${xids[0]}"`);
    const line = worker
      .output()
      .split('\n')
      .find((l) => l.includes(xids[0]!));
    expect(JSON.parse(line!)).toMatchObject({
      time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      domain: 'shop',
      outcome: 'confirmed',
      xid: xids[0],
      attempt: 1,
    });
    await until('/healthz 200', async () => (await get(port)) === 200);
    const body = await (await fetch(`http://127.0.0.1:${port}/healthz`)).json();
    expect(body).toEqual({ status: 'ok', redis: 'ready' });
    expect((await fetch(`http://127.0.0.1:${port}/other`)).status).toBe(404);
    expect(await worker.kill('SIGTERM')).toBe(0);
  });

  it('logs a failed record in the pretty format, and /healthz says 503 once its Redis is gone', async () => {
    let servers: RedisServers | undefined;
    let client: Redis | undefined;
    try {
      servers = await startStandalone(1);
      const { host, port: redisPort } = servers.servers[0]!;
      client = new Redis({ host, port: redisPort });
      client.on('error', () => {});
      const url = `redis://${host}:${redisPort}`;
      const { env } = await shop(0, client, url);
      const storage = new RedisStorage({ client, prefix: env.TCC_TEST_PREFIX });
      const broken = makeRecord({
        domain: 'shop',
        status: 'CONFIRMING',
        createdAt: Date.now() - HOUR,
        updatedAt: Date.now() - HOUR,
        participants: [
          {
            id: 'p1',
            kind: 'local',
            target: 'shop.broken',
            confirm: 'confirm',
            cancel: 'cancel',
            args: codec.encode(['x']),
            status: 'TRYING',
          },
        ],
      });
      await storage.create(broken);
      const port = await freePort();
      const worker = startChild(CLI, ['worker', '--health-port', String(port)], {
        ...env,
        TCC_TEST_CLOSE_TIMEOUT: '500',
      });
      children.push(worker);
      await worker.waitFor(`${broken.xid}  CONFIRMING  attempt 1  the warehouse is on fire`);
      expect(worker.output()).toMatch(
        new RegExp(
          `\\d{4}-\\d\\d-\\d\\dT\\S+Z  failed\\s+${broken.xid}  CONFIRMING  attempt 1  the warehouse is on fire`,
        ),
      );
      await until('/healthz 200', async () => (await get(port)) === 200);
      await servers.servers[0]!.kill();
      await until('/healthz 503', async () => (await get(port)) === 503);
      expect(worker.output()).not.toContain('[ioredis]');
      await worker.kill('SIGKILL');
    } finally {
      client?.disconnect();
      await servers?.stop();
    }
  }, 120_000);
});
