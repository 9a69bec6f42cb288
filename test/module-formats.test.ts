import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const tsc = join(repoRoot, 'node_modules/.bin/tsc');

/**
 * An application outside the repository: its own folder, whose `node_modules` is the
 * workspace's (where `@tcc/*` link to `packages/*`), and tsconfigs that extend nothing, so
 * TypeScript reads the packages' `dist` types through `exports`, `types` and `typesVersions`
 * as it would in an installed copy: the `@tcc/source` condition of the repo's own tsconfigs
 * is not in play.
 */
const app = mkdtempSync(join(tmpdir(), 'tcc-module-formats-'));
symlinkSync(join(repoRoot, 'node_modules'), join(app, 'node_modules'), 'dir');
afterAll(() => rmSync(app, { recursive: true, force: true }));

// One thing from every entry point of every package, and a decorated participant run in a
// transaction. No top-level await: the same text is also a CommonJS module.
const consumer = `
import { Compensable, hasCode, Participant, Tcc } from '@tcc/core';
import { COMMAND_PATH } from '@tcc/core/http';
import { MemoryStorage } from '@tcc/core/storage';
import { CountingStorage } from '@tcc/core/testing';
import { RecordNotFoundError } from '@tcc/recovery';
import { RedisStorage, type RedisStorageOptions } from '@tcc/storage-redis';
import { MIGRATIONS, type SqlStorageOptions } from '@tcc/storage-sql';

const steps: string[] = [];

@Participant('capital')
class Capital {
  @Compensable({ confirmMethod: 'confirmHold', cancelMethod: 'cancelHold' })
  async hold(amount: number): Promise<void> {
    steps.push(\`try \${amount}\`);
  }
  async confirmHold(amount: number): Promise<void> {
    steps.push(\`confirm \${amount}\`);
  }
  async cancelHold(amount: number): Promise<void> {
    steps.push(\`cancel \${amount}\`);
  }
}

export async function main(): Promise<Record<string, unknown>> {
  const storage = new CountingStorage(new MemoryStorage());
  const tcc = new Tcc({ domain: 'order', storage });
  const capital = tcc.register(new Capital());
  await tcc.transaction(async () => {
    await capital.hold(30);
  });
  await tcc.stop();
  const redisOptions: Partial<RedisStorageOptions> = {};
  const sqlOptions: Partial<SqlStorageOptions> = {};
  return {
    steps,
    commandPath: COMMAND_PATH,
    redisStorage: typeof RedisStorage,
    migrations: MIGRATIONS.length > 0,
    notFound: hasCode(new RecordNotFoundError('x'), 'TCC_NOT_FOUND'),
    options: [redisOptions, sqlOptions].length,
  };
}
`;

/** What each project compiles: every `module` an application may use, and its resolution. */
const projects = {
  // The classic NestJS starter: CommonJS output, node10 resolution (no `exports`), decorators
  // with metadata. TypeScript 6 calls node10 deprecated, hence ignoreDeprecations.
  commonjs: {
    files: ['consumer.ts'],
    options: {
      module: 'commonjs',
      moduleResolution: 'node10',
      ignoreDeprecations: '6.0',
      esModuleInterop: true,
      experimentalDecorators: true,
      emitDecoratorMetadata: true,
      outDir: 'out',
    },
  },
  // A CommonJS (.cts) and an ES module (.mts) file: each must get types of its own format.
  node16: {
    files: ['consumer.cts', 'consumer.mts'],
    options: { module: 'node16', moduleResolution: 'node16', experimentalDecorators: true, noEmit: true },
  },
  nodenext: {
    files: ['consumer.cts', 'consumer.mts'],
    options: { module: 'nodenext', moduleResolution: 'nodenext', experimentalDecorators: true, noEmit: true },
  },
  // Standard decorators here, for the other mode.
  bundler: {
    files: ['consumer.ts'],
    options: { module: 'preserve', moduleResolution: 'bundler', noEmit: true },
  },
} as const;

/**
 * Compiles one project and returns its errors. Errors inside third-party declarations are left
 * out: `skipLibCheck` is off so that a wrong import in the packages' own `.d.ts` shows, and it
 * then also shows that @electric-sql/pglite's types (which `openPGlite`'s declaration names)
 * need @types/emscripten, a devDependency of theirs. Memoized: the run test reuses the build.
 */
const compile = (() => {
  const runs = new Map<string, Promise<string[]>>();
  return (name: string) => {
    let errors = runs.get(name);
    if (errors === undefined) {
      errors = run(tsc, ['-p', `tsconfig.${name}.json`], { cwd: app }).then(
        () => [],
        (error: { stdout: string }) =>
          error.stdout
            .split('\n')
            .filter((line) => /error TS\d+/.test(line) && !/\/node_modules\/(?!@tcc\/)/.test(line)),
      );
      runs.set(name, errors);
    }
    return errors;
  };
})();

beforeAll(async () => {
  // `npm test` builds with `tsc -b` only: the CommonJS entry points come from each package's
  // build script, which this runs the way `npm run build` does.
  await run(tsc, ['-b', 'packages/storage-redis', 'packages/storage-sql', 'packages/recovery'], {
    cwd: repoRoot,
  });
  await run(process.execPath, ['scripts/cjs-entry-points.mjs'], { cwd: repoRoot });
  for (const file of ['consumer.ts', 'consumer.cts', 'consumer.mts'])
    writeFileSync(join(app, file), consumer);
  for (const [name, { files, options }] of Object.entries(projects)) {
    const compilerOptions = {
      target: 'ES2022',
      strict: true,
      types: ['node'],
      skipLibCheck: false,
      ...options,
    };
    writeFileSync(join(app, `tsconfig.${name}.json`), JSON.stringify({ compilerOptions, files }));
  }
  // All at once: each is a separate tsc process, and the tests only await their results.
  for (const name of Object.keys(projects)) void compile(name);
}, 300_000);

describe('module formats', () => {
  describe.each(Object.keys(projects))('a TypeScript application on module %s', (name) => {
    it('compiles against the built packages', async () => {
      expect(await compile(name)).toEqual([]);
    }, 120_000);
  });

  it('a CommonJS application requires every entry point and runs a decorated participant', async () => {
    expect(await compile('commonjs')).toEqual([]);
    // The compiled consumer requires all seven entry points; the application then also imports
    // core, as an ES module dependency of a CommonJS app would: it must get the same module.
    const script = `
      const { main } = require('./out/consumer.js');
      main().then(async (result) => {
        const oneCopy = (await import('@tcc/core')).Tcc === require('@tcc/core').Tcc;
        console.log(JSON.stringify({ ...result, oneCopy }));
      });`;
    const { stdout, stderr } = await run(process.execPath, ['-e', script], { cwd: app });
    expect(JSON.parse(stdout)).toEqual({
      steps: ['try 30', 'confirm 30'],
      commandPath: '.tcc',
      redisStorage: 'function',
      migrations: true,
      notFound: true,
      options: 2,
      oneCopy: true,
    });
    // No ExperimentalWarning for require(esm) (Node 20.19 loads it unflagged and quietly).
    expect(stderr).toBe('');
  }, 120_000);
});
