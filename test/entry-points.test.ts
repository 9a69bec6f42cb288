import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const repoRoot = fileURLToPath(new URL('..', import.meta.url));

/**
 * Imports `specifiers` in a fresh Node process, from the built packages as an installed
 * application would, and reports what the import left behind.
 */
async function importFresh(...specifiers: string[]): Promise<{ reflect: string; names: string[][] }> {
  const script = `
    const names = [];
    for (const s of ${JSON.stringify(specifiers)}) names.push(Object.keys(await import(s)).sort());
    console.log(JSON.stringify({ reflect: typeof Reflect.getMetadata, names }));`;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: repoRoot });
  return JSON.parse(stdout) as { reflect: string; names: string[][] };
}

beforeAll(async () => {
  // `npm test` builds first; this keeps the file right when run on its own too.
  await run(`${repoRoot}node_modules/.bin/tsc`, ['-b', 'packages/storage-redis', 'packages/storage-sql'], {
    cwd: repoRoot,
  });
}, 300_000);

describe('entry points', () => {
  it('a store loads core through @tcc/core/storage alone: no runtime, no decorator polyfill', async () => {
    const loaded = await importFresh('@tcc/storage-redis', '@tcc/storage-sql', '@tcc/core/storage');
    expect(loaded.reflect).toBe('undefined');
    expect(loaded.names[2]).toContain('MemoryStorage');
    expect(loaded.names[2]).not.toContain('Tcc');
  });

  it('the application entry point is the one that installs the polyfill the decorators need', async () => {
    const loaded = await importFresh('@tcc/core');
    expect(loaded.reflect).toBe('function');
  });

  it('wire internals live in @tcc/core/http, not in the application API', async () => {
    const [app, http] = (await importFresh('@tcc/core', '@tcc/core/http')).names;
    expect(http).toEqual(expect.arrayContaining(['COMMAND_PATH', 'signCommand', 'tccExpress', 'tccFetch']));
    expect(app).not.toContain('COMMAND_PATH');
    expect(app).not.toContain('signCommand');
    expect(app).toEqual(expect.arrayContaining(['Tcc', 'Compensable', 'RemoteCallError', 'hasCode']));
  });
});
