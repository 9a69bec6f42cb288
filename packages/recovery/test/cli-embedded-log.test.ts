import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildRecovery, type Child, ROOT, startChild, tccCli } from './support.js';

// `tccctl` opens the log through the same config module as the service. On the embedded default
// (PGlite in a directory) a second opener used to destroy the running service's log; now the
// directory is locked and tccctl says what to do instead.
const CONFIG = fileURLToPath(new URL('./fixtures/embedded.config.mjs', import.meta.url));
const SERVICE = fileURLToPath(new URL('./fixtures/embedded-service.mjs', import.meta.url));
const SLOW = { timeout: 180_000 }; // embedded PostgreSQL engines start in seconds on a busy machine

let dir: string;
let env: NodeJS.ProcessEnv;
let service: Child | undefined;

beforeAll(async () => {
  // The CLI and the service run compiled code: this package's and @tcc/storage-sql's dist/
  // (types are the typecheck's business; this only brings dist/ up to date with src/).
  await promisify(execFile)(
    process.execPath,
    [`${ROOT}node_modules/typescript/bin/tsc`, '-p', 'packages/storage-sql', '--noCheck'],
    { cwd: ROOT },
  );
  await buildRecovery();
  dir = await mkdtemp(join(tmpdir(), 'tcc-cli-embedded-'));
  env = { TCC_CONFIG: CONFIG, TCC_TEST_DATA: join(dir, 'log') };
}, 180_000);
afterEach(async () => {
  await service?.kill('SIGKILL');
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('tccctl against a running service on the embedded log', SLOW, () => {
  it('refuses with exit 3 naming the directory and the service pid, and leaves the service and its log intact', async () => {
    service = startChild(SERVICE, [], env);
    await service.waitFor('RUNNING');
    const [, pid, xid] = service.output().match(/RUNNING (\d+) (\S+)/) ?? [];
    expect(xid, service.output()).toBeDefined();

    const [text, json] = await Promise.all([tccCli(['ls'], env), tccCli(['ls', '--json'], env)]);
    expect(text.code, text.stderr).toBe(3);
    expect(text.stderr).toContain(
      `tccctl: the embedded database ${env.TCC_TEST_DATA} is in use by process ${pid}`,
    );
    expect(text.stderr).toContain(`tccctl reads the log through its config (${CONFIG})`);
    expect(text.stderr).toMatch(/Run tccctl while that service is stopped/);
    expect(text.stdout).toBe('');
    expect(json.code).toBe(3);
    expect(JSON.parse(json.stdout)).toMatchObject({
      error: { code: 'TCC_STORE_LOCKED', message: expect.stringContaining(`process ${pid}`) },
    });

    // The service kept running through it, and its log holds what it wrote.
    expect(service.process.exitCode).toBeNull();
    service.process.kill('SIGTERM');
    const [code] = (await once(service.process, 'exit')) as [number | null];
    expect(code, service.output()).toBe(0);
    expect(service.output()).toContain('STOPPED');
    expect(service.output()).not.toMatch(/Aborted|Error/);

    const after = await tccCli(['ls', '--json'], env);
    expect(after.code, after.stderr).toBe(0);
    expect(JSON.parse(after.stdout)).toEqual([
      expect.objectContaining({ xid, status: 'CONFIRMING', domain: 'shop' }),
    ]);
  });
});
