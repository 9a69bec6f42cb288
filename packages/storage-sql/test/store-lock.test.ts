import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { PGlite } from '@electric-sql/pglite';
import { InvalidOptionError } from '@tcc/core';
import { openPGlite, SqlStorage, StoreLockedError } from '@tcc/storage-sql';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const FIXTURE = fileURLToPath(new URL('./fixtures/embedded-log.mjs', import.meta.url));
const LOCK = '.tcc.lock';

let base: string;
let n = 0;
const children = new Set<ChildProcess>();

beforeAll(async () => {
  // The spawned processes run the compiled package. Types are the typecheck's business
  // (`npm test` runs it first); this only brings dist/ up to date with src/.
  await promisify(execFile)(
    process.execPath,
    [`${ROOT}node_modules/typescript/bin/tsc`, '-p', 'packages/storage-sql', '--noCheck'],
    { cwd: ROOT },
  );
  base = await mkdtemp(join(tmpdir(), 'tcc-lock-'));
}, 120_000);
afterEach(() => {
  for (const child of children) child.kill('SIGKILL');
});
afterAll(async () => {
  if (base) await rm(base, { recursive: true, force: true });
});

const newDir = () => join(base, `db${n++}`);

interface Child {
  readonly process: ChildProcess;
  output(): string;
  waitFor(pattern: RegExp): Promise<RegExpMatchArray>;
  exit(): Promise<number | null>;
}

function run(mode: 'hold' | 'open' | 'exit', dir: string): Child {
  const child = spawn(process.execPath, [FIXTURE, mode, dir], { cwd: ROOT });
  children.add(child);
  const exited = once(child, 'exit').then(([code]) => {
    children.delete(child);
    return code as number | null;
  });
  let output = '';
  const collect = (chunk: Buffer) => {
    output += chunk.toString();
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  return {
    process: child,
    output: () => output,
    async waitFor(pattern) {
      for (;;) {
        const match = output.match(pattern);
        if (match) return match;
        if (child.exitCode !== null || child.signalCode !== null) {
          throw new Error(`process exited before ${pattern}: ${output}`);
        }
        await Promise.race([once(child.stdout, 'data'), exited]);
      }
    },
    exit: () => exited,
  };
}

/** Rows 1..n of the holder's `notes` table, read by this process once it may open the directory. */
async function notes(dir: string): Promise<number[]> {
  const db = await openPGlite(dir);
  try {
    return (await db.query<{ n: number }>('SELECT n FROM notes ORDER BY n')).rows.map((r) => r.n);
  } finally {
    await db.close();
  }
}

const oneTo = (count: number) => Array.from({ length: count }, (_, i) => i + 1);

// Each test starts one or more embedded PostgreSQL engines (seconds each on a busy machine).
const SLOW = { timeout: 180_000 };

describe('two processes on one embedded log', SLOW, () => {
  it('refuses the second opener with StoreLockedError naming the directory and the holder pid; the holder and its data are intact', async () => {
    const dir = newDir();
    const holder = run('hold', dir);
    const pid = Number((await holder.waitFor(/HOLDING (\d+)/))[1]);

    const second = run('open', dir);
    expect(await second.exit(), second.output()).toBe(3);
    expect(second.output()).toContain(
      `REFUSED StoreLockedError TCC_STORE_LOCKED the embedded database ${dir} is in use by process ${pid}`,
    );
    expect(second.output()).toMatch(/Stop that process first/);

    holder.process.kill('SIGTERM');
    const rows = Number((await holder.waitFor(/CLOSED (\d+)/))[1]);
    expect(await holder.exit(), holder.output()).toBe(0);
    expect(holder.output()).not.toMatch(/Aborted|WRITE FAILED/);
    expect(rows).toBeGreaterThanOrEqual(10);
    expect(await notes(dir)).toEqual(oneTo(rows));
    expect(existsSync(join(dir, LOCK))).toBe(false);
  });

  it('takes over the lock of a SIGKILLed holder by its pid, long before the lock could go stale, with its data', async () => {
    const dir = newDir();
    const holder = run('hold', dir);
    await holder.waitFor(/HOLDING/);
    holder.process.kill('SIGKILL');
    await holder.exit();
    expect(existsSync(join(dir, LOCK))).toBe(true); // a SIGKILL leaves it behind

    // A lock whose holder cannot be judged by pid goes stale after 60 s; this bound is below it.
    const deadline = Date.now() + 30_000;
    let rows: number[] | undefined;
    while (rows === undefined) {
      try {
        rows = await notes(dir);
      } catch (error) {
        if (!(error instanceof StoreLockedError) || Date.now() > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    expect(rows.length).toBeGreaterThanOrEqual(10);
    expect(rows).toEqual(oneTo(rows.length));
  });

  it('releases the lock when the process exits without closing the store', async () => {
    const dir = newDir();
    const child = run('exit', dir);
    expect(await child.exit(), child.output()).toBe(0);
    expect(existsSync(join(dir, LOCK))).toBe(false);
    const next = run('open', dir);
    expect(await next.exit(), next.output()).toBe(0);
    expect(next.output()).toContain('OPENED');
  });
});

describe('the lock in one process', SLOW, () => {
  it('refuses a second database on an open directory, and lets stores share the one opened', async () => {
    const dir = newDir();
    const db = await openPGlite(dir);
    try {
      const error = await openPGlite(dir).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StoreLockedError);
      expect(error).toMatchObject({ code: 'TCC_STORE_LOCKED', dataDir: dir, holderPid: process.pid });
      const own = new SqlStorage({ dataDir: dir });
      await expect(own.migrate()).rejects.toBeInstanceOf(StoreLockedError);
      await own.close();

      const a = new SqlStorage({ client: db, table: 'log_a' });
      const b = new SqlStorage({ client: db, table: 'log_b' });
      await a.migrate();
      await b.migrate();
      await a.close(); // b's share keeps the lock
      await expect(openPGlite(dir)).rejects.toBeInstanceOf(StoreLockedError);
      expect(await b.count({})).toBe(0);
      await b.close();
    } finally {
      await db.close();
    }
    expect(existsSync(join(dir, LOCK))).toBe(false);
  });

  it('opens its own database with dataDir and releases it on close()', async () => {
    const dir = newDir();
    const storage = new SqlStorage({ dataDir: dir });
    expect(await storage.migrate()).toMatchObject({ applied: [1, 2] });
    expect(existsSync(join(dir, LOCK))).toBe(true);
    await expect(openPGlite(dir)).rejects.toBeInstanceOf(StoreLockedError);
    await storage.close();
    expect(existsSync(join(dir, LOCK))).toBe(false);
    const again = new SqlStorage({ dataDir: dir });
    expect(await again.migrate()).toMatchObject({ from: 2, applied: [] });
    await again.close();
  });

  it('locks the directory of a PGlite given as client at the store first call', async () => {
    const dir = newDir();
    const db = await PGlite.create(dir);
    const storage = new SqlStorage({ client: db });
    try {
      expect(existsSync(join(dir, LOCK))).toBe(false);
      await storage.migrate();
      expect(existsSync(join(dir, LOCK))).toBe(true);
      const second = run('open', dir);
      expect(await second.exit(), second.output()).toBe(3);
      expect(second.output()).toContain(`is in use by process ${process.pid}`);
    } finally {
      await storage.close();
      await db.close();
    }
    expect(existsSync(join(dir, LOCK))).toBe(false);
  });

  it('takes no lock for a database in memory', async () => {
    const a = new SqlStorage({ dataDir: 'memory://' });
    const b = new SqlStorage({ client: await openPGlite('memory://') });
    await a.migrate();
    await b.migrate();
    expect(await a.count({})).toBe(0);
    expect(await b.count({})).toBe(0);
    await a.close();
    await b.close();
  });

  it('refuses bad dataDir options by name, and creates nothing', async () => {
    const dir = newDir();
    const db = await openPGlite('memory://');
    expect(() => new SqlStorage({ client: db, dataDir: dir })).toThrow(
      new InvalidOptionError('SqlStorage: give either client or dataDir, not both'),
    );
    expect(() => new SqlStorage({})).toThrow(/SqlStorage: give client \(a pg\.Pool, .*\) or dataDir/);
    expect(() => new SqlStorage({ dataDir: '' })).toThrow(
      /SqlStorage: dataDir must be a directory path, got ""/,
    );
    expect(() => new SqlStorage({ dataDir: 42 as never })).toThrow(
      /dataDir must be a directory path, got 42/,
    );
    await expect(openPGlite('')).rejects.toThrow(/openPGlite: dataDir must be a directory path, got ""/);
    await expect(openPGlite(undefined as never)).rejects.toBeInstanceOf(InvalidOptionError);
    expect(existsSync(dir)).toBe(false);
    await db.close();
  });
});
