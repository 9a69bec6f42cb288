import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// The packages as a user gets them: packed from this tree (their `prepack` builds them, nothing
// is built by hand first), installed from the tarballs into apps outside the workspace, where
// no `@tcc/source` condition, workspace link or hoisted dev dependency can stand in for what is
// missing from a tarball. Run by `npm run test:packaging` (see ./README.md).

const repo = fileURLToPath(new URL('../../', import.meta.url));
const bin = (name: string) => join(repo, 'node_modules', '.bin', name);
const PACKAGES = ['core', 'storage-redis', 'storage-sql', 'recovery'] as const;
const manifest = (dir: string) =>
  JSON.parse(readFileSync(join(repo, dir, 'package.json'), 'utf8')) as {
    name: string;
    version: string;
    exports: Record<string, unknown>;
    dependencies?: Record<string, string>;
    devDependencies?: Record<string, string>;
    peerDependencies?: Record<string, string>;
  };
const manifests = PACKAGES.map((p) => manifest(`packages/${p}`));

/** The version range the workspace uses for a third-party package, wherever it declares it. */
function range(name: string): string {
  for (const m of [...manifests, manifest('.')]) {
    const found = m.peerDependencies?.[name] ?? m.dependencies?.[name] ?? m.devDependencies?.[name];
    if (found !== undefined) return found;
  }
  throw new Error(`no package of the workspace names ${name}`);
}

const env = {
  ...process.env,
  // Set by test/global-setup.ts (a throwaway server where none answered at the default address).
  REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
  DATABASE_URL: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
  npm_config_audit: 'false',
  npm_config_fund: 'false',
  npm_config_update_notifier: 'false',
  NO_COLOR: '1',
};

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Runs a command to its end, or kills it (and its children) after `timeoutMs`. */
function run(command: string, args: string[], cwd: string, timeoutMs = 120_000): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      process.kill(-child.pid!, 'SIGKILL');
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, timedOut });
    });
  });
}

/** A command that must succeed; its output is in the failure message when it does not. */
async function ok(command: string, args: string[], cwd: string, timeoutMs?: number): Promise<Ran> {
  const ran = await run(command, args, cwd, timeoutMs);
  const what = `${command} ${args.join(' ')} (in ${cwd})`;
  if (ran.timedOut)
    throw new Error(`${what} did not end within ${timeoutMs} ms\n${ran.stdout}\n${ran.stderr}`);
  if (ran.code !== 0) throw new Error(`${what} exited ${ran.code}\n${ran.stdout}\n${ran.stderr}`);
  return ran;
}

const work = mkdtempSync(join(tmpdir(), 'tcc-packaging-'));
const tarballDir = join(work, 'tarballs');
/** Every package, every peer the README snippets and checks need. */
const app = join(work, 'app');
/** `@tcc/core`, `@tcc/storage-redis` and ioredis only. */
const redisApp = join(work, 'redis-app');
const tarballs = new Map<string, string>();

function writeApp(dir: string, dependencies: Record<string, string>): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'package.json'),
    `${JSON.stringify({ name: 'scratch', private: true, type: 'module', dependencies }, null, 2)}\n`,
  );
}

const install = (dir: string) =>
  ok('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], dir, 300_000);

beforeAll(async () => {
  mkdirSync(tarballDir, { recursive: true });
  // From a clean tree: each prepack deletes its dist and builds it again.
  const packed = await ok(
    'npm',
    ['pack', '--json', '--pack-destination', tarballDir, ...PACKAGES.flatMap((p) => ['-w', `packages/${p}`])],
    repo,
    600_000,
  );
  // Lifecycle output (tsc) may precede the JSON on stdout.
  const list = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('[\n'))) as {
    name: string;
    filename: string;
  }[];
  for (const { name, filename } of list) tarballs.set(name, join(tarballDir, filename));
  const tgz = (name: string) => `file:${tarballs.get(name)}`;

  writeApp(app, {
    ...Object.fromEntries(manifests.map((m) => [m.name, tgz(m.name)])),
    ...Object.fromEntries(
      ['ioredis', 'pg', '@electric-sql/pglite', 'bullmq', '@types/node', '@types/pg'].map((d) => [
        d,
        range(d),
      ]),
    ),
  });
  writeApp(redisApp, {
    '@tcc/core': tgz('@tcc/core'),
    '@tcc/storage-redis': tgz('@tcc/storage-redis'),
    ioredis: range('ioredis'),
  });
  // One after the other: two installs at once would fight over the npm cache on 2 cores.
  await install(app);
  await install(redisApp);
}, 900_000);

afterAll(() => {
  if (process.env.TCC_PACKAGING_KEEP) console.log(`[packaging] scratch apps kept in ${work}`);
  else rmSync(work, { recursive: true, force: true });
});

describe('the tarballs', () => {
  it('are one per package, each with every file its exports name', async () => {
    expect([...tarballs.keys()].sort()).toEqual(manifests.map((m) => m.name).sort());
    for (const m of manifests) {
      const listing = (await ok('tar', ['-tzf', tarballs.get(m.name)!], work)).stdout;
      const targets = JSON.stringify(m.exports).match(/"\.\/dist\/[^"]+"/g) ?? [];
      expect(targets.length, m.name).toBeGreaterThan(0);
      for (const target of targets) expect(listing, m.name).toContain(`package/${target.slice(3, -1)}`);
    }
  });

  // attw reads a .attw.json in the directory it runs in, so it runs at the repository's root.
  it.each(PACKAGES)('%s passes attw (are the types wrong)', async (p) => {
    const name = manifests[PACKAGES.indexOf(p)]!.name;
    expect(existsSync(bin('attw')), 'attw (@arethetypeswrong/cli) is a dev dependency of the workspace').toBe(
      true,
    );
    await ok(bin('attw'), [tarballs.get(name)!], repo);
  });

  it.each(PACKAGES)('%s passes publint', async (p) => {
    const name = manifests[PACKAGES.indexOf(p)]!.name;
    expect(existsSync(bin('publint')), 'publint is a dev dependency of the workspace').toBe(true);
    await ok(bin('publint'), ['run', tarballs.get(name)!, '--strict'], repo);
  });
});

/** The entry points of every package (`@tcc/core/testing` needs vitest, which an app does not have). */
const entryPoints = manifests.flatMap((m) =>
  Object.keys(m.exports)
    .filter((key) => key !== './package.json' && key !== './testing')
    .map((key) => (key === '.' ? m.name : `${m.name}/${key.slice(2)}`)),
);

describe('an app', () => {
  it('imports every entry point as an ES module', async () => {
    const file = join(app, 'import-all.mjs');
    writeFileSync(
      file,
      `for (const name of ${JSON.stringify(entryPoints)}) {\n` +
        '  const exported = Object.keys(await import(name));\n' +
        "  if (exported.length === 0) throw new Error(name + ' exports nothing');\n" +
        '  console.log(name, exported.length);\n}\n',
    );
    const { stdout } = await ok('node', [file], app);
    expect(stdout.trim().split('\n')).toHaveLength(entryPoints.length);
  });

  it('requires every entry point from CommonJS', async () => {
    const file = join(app, 'require-all.cjs');
    writeFileSync(
      file,
      `for (const name of ${JSON.stringify(entryPoints)}) {\n` +
        '  const exported = Object.keys(require(name));\n' +
        "  if (exported.length === 0) throw new Error(name + ' exports nothing');\n" +
        '  console.log(name, exported.length);\n}\n',
    );
    const { stdout } = await ok('node', [file], app);
    expect(stdout.trim().split('\n')).toHaveLength(entryPoints.length);
  });

  // A consumer's file that uses a value and a type of every entry point; `IsAny` catches an
  // import that resolved to nothing typed.
  const consumer = `import { MemoryStorage, Tcc, type TccOptions } from '@tcc/core';
import { tccFetch } from '@tcc/core/http';
import { writeNextVersion, type TransactionStorage } from '@tcc/core/storage';
import { RecoveryWorker } from '@tcc/recovery';
import { RedisStorage } from '@tcc/storage-redis';
import { SqlStorage } from '@tcc/storage-sql';

type IsAny<T> = 0 extends 1 & T ? true : false;
export const typed: IsAny<
  typeof Tcc | typeof tccFetch | typeof writeNextVersion | typeof RecoveryWorker | typeof RedisStorage | typeof SqlStorage
>[] = [false];
const storage: TransactionStorage = new MemoryStorage();
const options: TccOptions = { domain: 'order', storage };
export const tcc = new Tcc(options);
`;

  const compilations = [
    { module: 'nodenext', file: 'consumer.mts' },
    { module: 'nodenext', file: 'consumer.cts' },
    { module: 'node16', file: 'consumer.mts' },
    { module: 'node16', file: 'consumer.cts' },
    { module: 'commonjs', file: 'consumer.ts' },
    { module: 'bundler', file: 'consumer.ts' },
  ];
  it.each(compilations)('compiles against them with module $module ($file)', async ({ module, file }) => {
    const dir = join(app, `ts-${module}-${file.replace('.', '-')}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, file), consumer);
    const compilerOptions = {
      ...(module === 'bundler'
        ? { module: 'preserve', moduleResolution: 'bundler' }
        : module === 'commonjs'
          ? { module: 'commonjs' }
          : { module, moduleResolution: module }),
      target: 'ES2022',
      strict: true,
      noEmit: true,
      types: ['node'],
      // As most apps have it (PGlite's own declarations do not compile without it): an import
      // that does not resolve is still an error, and attw checks our declarations themselves.
      skipLibCheck: true,
    };
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: [file] }, null, 2));
    await ok(bin('tsc'), ['-p', dir], app);
  });
});

/** A ```ts block of a README: where it is, and its code. */
interface Snippet {
  readme: string;
  line: number;
  code: string;
  fragment: boolean;
}

/** Every ```ts block of a README; one right after `<!-- fragment -->` cannot run alone. */
function snippets(readme: string): Snippet[] {
  const lines = readFileSync(join(repo, readme), 'utf8').split('\n');
  const found: Snippet[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]!.trim() !== '```ts') continue;
    const end = lines.findIndex((l, j) => j > i && l.trim() === '```');
    let before = i - 1;
    while (before >= 0 && lines[before]!.trim() === '') before--;
    found.push({
      readme,
      line: i + 1,
      code: lines.slice(i + 1, end).join('\n'),
      fragment: lines[before]?.trim() === '<!-- fragment -->',
    });
    i = end;
  }
  return found;
}

const READMES = ['README.md', ...PACKAGES.map((p) => `packages/${p}/README.md`)];
const SNIPPET_TIMEOUT_MS = 60_000;

describe('every README snippet, run as written in the app', () => {
  const all = READMES.flatMap(snippets);
  const runnable = all.filter((s) => !s.fragment);
  const fileOf = (s: Snippet) => `${s.readme.replace(/\W+/g, '-')}-${s.line}.mts`;
  const snippetDir = join(app, 'snippets');
  let diagnostics = '';

  beforeAll(async () => {
    mkdirSync(snippetDir, { recursive: true });
    for (const s of runnable) writeFileSync(join(snippetDir, fileOf(s)), `${s.code}\n`);
    const compilerOptions = {
      module: 'nodenext',
      target: 'ES2022', // the README's advice for decorators on Node 20
      strict: true,
      types: ['node'],
      skipLibCheck: true,
    };
    writeFileSync(join(snippetDir, 'tsconfig.json'), JSON.stringify({ compilerOptions, include: ['*.mts'] }));
    // One compilation for all (each .mts is a module of its own); emits .mjs even where it
    // finds errors, which each snippet's test then reports as its own.
    diagnostics = (await run(bin('tsc'), ['-p', snippetDir], app)).stdout;
  }, 120_000);

  it('finds snippets in every README, and few fragments', () => {
    for (const readme of READMES)
      expect(all.filter((s) => s.readme === readme).length, readme).toBeGreaterThan(0);
    expect(all.filter((s) => s.fragment).length).toBeLessThan(runnable.length / 2);
  });

  it.each(runnable.map((s) => [`${s.readme}:${s.line}`, s] as const))(
    '%s compiles, runs, prints what it did and exits by itself',
    async (_, s) => {
      const file = fileOf(s);
      const errors = diagnostics.split('\n').filter((l) => l.startsWith(file));
      expect(errors, 'tsc').toEqual([]);
      const ran = await run(
        'node',
        [join(snippetDir, file.replace(/\.mts$/, '.mjs'))],
        app,
        SNIPPET_TIMEOUT_MS,
      );
      expect(
        ran.timedOut,
        `still running after ${SNIPPET_TIMEOUT_MS} ms:\n${ran.stdout}\n${ran.stderr}`,
      ).toBe(false);
      expect(ran.code, ran.stderr).toBe(0);
      expect(ran.stdout.trim(), 'prints nothing').not.toBe('');
    },
    SNIPPET_TIMEOUT_MS + 10_000,
  );
});

describe('a Redis-only app', () => {
  it('installs neither pg nor PGlite', async () => {
    type Tree = { dependencies?: Record<string, Tree> };
    const names: string[] = [];
    const walk = (tree: Tree) => {
      for (const [name, sub] of Object.entries(tree.dependencies ?? {})) {
        names.push(name);
        walk(sub);
      }
    };
    walk(JSON.parse((await ok('npm', ['ls', '--all', '--json'], redisApp)).stdout) as Tree);
    expect(names).toContain('@tcc/storage-redis');
    expect(names).not.toContain('pg');
    expect(names).not.toContain('@electric-sql/pglite');
  });

  it('bundles with esbuild and runs from the bundle alone', async () => {
    writeFileSync(
      join(redisApp, 'app.ts'),
      `import { Tcc } from '@tcc/core';
import { RedisStorage } from '@tcc/storage-redis';
import { Redis } from 'ioredis';

const client = new Redis(process.env.REDIS_URL!, { maxRetriesPerRequest: 3 });
const tcc = new Tcc({ domain: 'bundle', storage: new RedisStorage({ client, prefix: 'tcc-bundle:' }) });
const step = tcc.compensable('bundle.step', {
  try: async () => {},
  confirm: async () => console.log('confirmed from the bundle'),
  cancel: async () => {},
});
await tcc.transaction(() => step());
await client.quit();
`,
    );
    const out = join(work, 'bundle-only');
    await ok(
      bin('esbuild'),
      [
        'app.ts',
        '--bundle',
        '--platform=node',
        '--format=esm',
        '--target=node20',
        `--outfile=${join(out, 'app.mjs')}`,
        // ioredis and its dependencies are CommonJS and call require(): give the ES bundle one.
        "--banner:js=import { createRequire as bannerRequire } from 'node:module'; const require = bannerRequire(import.meta.url);",
      ],
      redisApp,
    );
    // Away from any node_modules: the bundle must hold everything it reads (the Lua scripts too).
    const { stdout } = await ok('node', [join(out, 'app.mjs')], out, 60_000);
    expect(stdout).toContain('confirmed from the bundle');
  });
});

describe('tccctl, installed with @tcc/recovery', () => {
  it('says its version', async () => {
    const { stdout } = await ok('npx', ['--no-install', 'tccctl', '--version'], app);
    expect(stdout.trim()).toContain(manifest('packages/recovery').version);
  });

  it('lists records through a TypeScript config', async () => {
    writeFileSync(
      join(app, 'tcc.config.ts'),
      `import { Tcc } from '@tcc/core';
import { RedisStorage } from '@tcc/storage-redis';
import { Redis } from 'ioredis';

const client: Redis = new Redis(process.env.REDIS_URL!, { maxRetriesPerRequest: 3 });
export const tcc = new Tcc({ domain: 'packaging', storage: new RedisStorage({ client, prefix: 'tcc-packaging:' }) });
export const close = async (): Promise<void> => {
  await client.quit();
};
`,
    );
    await ok('npx', ['--no-install', 'tccctl', 'ls', '--config', 'tcc.config.ts'], app, 60_000);
  });
});
