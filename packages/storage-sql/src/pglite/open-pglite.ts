import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { PGlite, PGliteOptions } from '@electric-sql/pglite';
import { InvalidOptionError } from '@tcc/core/storage';
import { type DirectoryLock, lockDirectory } from './directory-lock.js';

/**
 * Opens an embedded PostgreSQL (PGlite) kept in the directory `dataDir`, after taking an
 * exclusive lock on it: PGlite lets one process at a time open a directory, and a second one
 * destroys the first one's data. While a live process holds the directory, this rejects with
 * `StoreLockedError` (code `TCC_STORE_LOCKED`, naming the directory and the holder's pid) and
 * opens nothing. A holder that died (even by SIGKILL) is taken over.
 *
 * The lock is released by the returned database's `close()` and when the process exits. A
 * directory already open in this process is refused the same way (with this process's pid). A
 * `memory://` data directory takes no lock. `options` are PGlite's own (`dataDir` is this function's first argument).
 */
export async function openPGlite(dataDir: string, options: PGliteOptions = {}): Promise<PGlite> {
  if (typeof dataDir !== 'string' || dataDir === '') {
    throw new InvalidOptionError(
      `openPGlite: dataDir must be a directory path, got ${JSON.stringify(dataDir) ?? String(dataDir)}`,
    );
  }
  const { PGlite } = await loadPGlite();
  const dir = localDirectory(dataDir);
  if (dir === undefined) return PGlite.create(dataDir, options);
  await mkdir(dir, { recursive: true });
  const owner = {};
  const lock = await lockDirectory(dir, owner);
  let db: PGlite;
  try {
    db = await PGlite.create(dir, options);
  } catch (error) {
    await lock.release();
    throw error;
  }
  releaseOnClose(db, lock);
  lockOwners.set(db, owner);
  return db;
}

// The lock owner of each database opened here: a store given one of them shares its lock.
const lockOwners = new WeakMap<object, object>();

/** What `lockDirectory` should lock a PGlite's directory for: the lock `openPGlite` took for it, else itself. */
export function lockOwnerOf(db: object): object {
  return lockOwners.get(db) ?? db;
}

/** The directory of a PGlite data directory on this machine's disk; `undefined` for `memory://` and the like. */
export function localDirectory(dataDir: string | undefined): string | undefined {
  if (dataDir === undefined || dataDir === '') return undefined;
  if (dataDir.startsWith('file://')) return resolve(dataDir.slice('file://'.length));
  return dataDir.includes('://') ? undefined : resolve(dataDir);
}

function releaseOnClose(db: PGlite, lock: DirectoryLock): void {
  const close = db.close.bind(db);
  db.close = async () => {
    try {
      if (!db.closed) await close();
    } finally {
      await lock.release();
    }
  };
}

/**
 * PGlite is an optional peer dependency (27 MB; an app on `pg` does without it), so it is
 * loaded on first use rather than imported, and its absence is reported as what to install.
 */
async function loadPGlite(): Promise<typeof import('@electric-sql/pglite')> {
  try {
    return await import('@electric-sql/pglite');
  } catch (error) {
    const { code, message } = error as { code?: unknown; message?: unknown };
    if (code === 'ERR_MODULE_NOT_FOUND' && String(message).includes("'@electric-sql/pglite'")) {
      throw new Error(
        'openPGlite: the embedded database needs @electric-sql/pglite, an optional peer dependency of ' +
          '@tcc/storage-sql that is not installed: npm install @electric-sql/pglite (or give a pg Pool as `client`)',
        { cause: error },
      );
    }
    throw error;
  }
}
