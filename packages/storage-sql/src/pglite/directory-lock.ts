import { realpath, rmdir, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { StoreLockedError } from '../errors.js';
import { identityOf, judge, me, readHolder, removeHolder, type Verdict, writeHolder } from './lock-holder.js';

/** The lock directory (made by proper-lockfile with mkdir, which is atomic) inside the data directory. */
export const LOCK_NAME = '.tcc.lock';
const HOLDER_NAME = '.tcc.lock.holder';
const TAKEOVER_NAME = '.tcc.takeover'; // proper-lockfile adds .lock
// The holder refreshes the lock's mtime this often; proper-lockfile's own mtime staleness is
// switched off (PGlite runs on the holder's thread, and a long statement must never let another
// process take a live holder's directory): dead holders are judged by `judge` instead.
const UPDATE_MS = 5_000;
const NEVER_STALE_MS = 365 * 24 * 3_600_000;
/** A lock whose holder cannot be judged by pid counts as dead once its mtime is this old. */
export const UNKNOWN_HOLDER_STALE_MS = 60_000;
// Takeovers are rare and short; a taker that died holding this one is passed over after it.
const TAKEOVER_STALE_MS = 30_000;
const ATTEMPTS = 5;

/** A share of a lock on a directory; the lock goes when the last share is released. */
export interface DirectoryLock {
  readonly dir: string;
  /** Idempotent. */
  release(): Promise<void>;
}

interface Entry {
  /** What the lock is for: one database object; two PGlite instances on one directory are as bad in one process as in two. */
  readonly owner: object;
  shares: number;
  readonly held: Promise<() => Promise<void>>;
}

const entries = new Map<string, Entry>();
const releasing = new Map<string, Promise<void>>();

/**
 * Takes an exclusive lock on the directory `dir` (which must exist) for `owner` (the database
 * object that uses the directory): another process, or another owner in this one, asking for it
 * gets `StoreLockedError`, unless the holder has died (a SIGKILLed holder is taken over at once
 * when its pid is known dead, otherwise once its lock has not been refreshed for a minute).
 * Callers with the same owner share the lock. It goes away when the last share is released or
 * the process exits.
 */
export async function lockDirectory(dir: string, owner: object): Promise<DirectoryLock> {
  const real = await realpath(dir);
  await releasing.get(real);
  let entry = entries.get(real);
  if (entry !== undefined && entry.owner !== owner) throw new StoreLockedError(real, process.pid);
  if (entry === undefined) {
    const created: Entry = { owner, shares: 0, held: acquire(real) };
    entry = created;
    entries.set(real, created);
    created.held.catch(() => {
      if (entries.get(real) === created) entries.delete(real);
    });
  }
  entry.shares++;
  const shared = entry;
  try {
    await shared.held;
  } catch (error) {
    shared.shares--;
    throw error;
  }
  let released = false;
  return {
    dir: real,
    async release() {
      if (released) return;
      released = true;
      if (--shared.shares > 0 || entries.get(real) !== shared) return;
      entries.delete(real);
      const done = shared.held.then((unlock) => unlock());
      releasing.set(real, done);
      try {
        await done;
      } finally {
        if (releasing.get(real) === done) releasing.delete(real);
      }
    },
  };
}

async function acquire(dir: string): Promise<() => Promise<void>> {
  const { default: lockfile } = await import('proper-lockfile');
  const lockPath = join(dir, LOCK_NAME);
  const holderPath = join(dir, HOLDER_NAME);
  let last: Verdict | undefined;
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    let unlock: (() => Promise<void>) | undefined;
    try {
      unlock = await lockfile.lock(dir, {
        lockfilePath: lockPath,
        realpath: false,
        stale: NEVER_STALE_MS,
        update: UPDATE_MS,
        onCompromised: (error) =>
          process.emitWarning(
            `the lock on the embedded database ${dir} was lost (${error.message}): another process may open it now`,
            { code: 'TCC_STORE_LOCK_LOST' },
          ),
      });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ELOCKED') throw error;
    }
    if (unlock !== undefined) {
      const release = unlock;
      try {
        const lock = identityOf(await stat(lockPath));
        await writeHolder(holderPath, me(lock));
        return async () => {
          await removeHolder(holderPath, lock);
          await release();
        };
      } catch (error) {
        await release().catch(() => {});
        throw error;
      }
    }
    last = await inspect(lockPath, holderPath);
    if (last === undefined) continue; // released meanwhile: try again
    if (last.state === 'alive') break;
    await takeOver(lockfile, dir, lockPath, holderPath);
  }
  throw new StoreLockedError(dir, last?.holder?.pid, foreignHost(last));
}

/** The lock's holder judged now, or `undefined` when there is no lock any more. */
async function inspect(lockPath: string, holderPath: string): Promise<Verdict | undefined> {
  const holder = await readHolder(holderPath);
  try {
    return judge(holder, await stat(lockPath), UNKNOWN_HOLDER_STALE_MS, Date.now());
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/**
 * Removes a dead holder's lock. Takers queue on a second lock and judge the holder again inside
 * it, so of several processes finding the same dead holder only one removes its lock, and none
 * removes the lock a faster taker has just made.
 */
async function takeOver(
  lockfile: typeof import('proper-lockfile'),
  dir: string,
  lockPath: string,
  holderPath: string,
): Promise<void> {
  // Its own path as proper-lockfile's key: its table of held locks is keyed by that path.
  const unlock = await lockfile.lock(join(dir, TAKEOVER_NAME), {
    realpath: false,
    stale: TAKEOVER_STALE_MS,
    retries: { retries: 60, minTimeout: 50, maxTimeout: 1_000 },
    onCompromised: () => {},
  });
  try {
    const verdict = await inspect(lockPath, holderPath);
    if (verdict?.state !== 'dead') return;
    try {
      await rmdir(lockPath);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  } finally {
    await unlock().catch(() => {});
  }
}

function foreignHost(verdict: Verdict | undefined): string | undefined {
  const host = verdict?.holder?.host;
  return host === undefined || host === hostname() ? undefined : host;
}
