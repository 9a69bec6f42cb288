import { readFileSync, type Stats } from 'node:fs';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';

/** Who holds a directory lock: written beside the lock directory by the process that made it. */
export interface Holder {
  readonly pid: number;
  readonly host: string;
  /** Kernel boot id (Linux): a holder from an earlier boot is gone whatever its pid. */
  readonly boot: string;
  /** Start time of the holder process (Linux, clock ticks since boot): tells a reused pid apart. */
  readonly start: string;
  /** Identity of the lock directory it made, so a holder file left by an earlier lock never counts. */
  readonly lock: string;
}

/** What a lock directory's holder file says about it. */
export type Verdict =
  | { readonly state: 'alive'; readonly holder: Holder | undefined }
  | { readonly state: 'dead'; readonly holder: Holder | undefined };

/** Device, inode and birth time: unlike mtime (refreshed by the holder), they never change. */
export function identityOf(stats: Stats): string {
  return `${stats.dev}:${stats.ino}:${stats.birthtimeMs}`;
}

export function me(lock: string): Holder {
  return { pid: process.pid, host: hostname(), boot: BOOT, start: procStat(process.pid)[1], lock };
}

/** Writes the holder file atomically (a reader sees the old one or the new one, never half). */
export async function writeHolder(path: string, holder: Holder): Promise<void> {
  const temp = `${path}.${process.pid}.tmp`;
  await writeFile(temp, JSON.stringify(holder));
  await rename(temp, path);
}

export async function readHolder(path: string): Promise<Holder | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const value = JSON.parse(text) as Partial<Holder>;
    return Number.isSafeInteger(value.pid) && typeof value.lock === 'string' ? (value as Holder) : undefined;
  } catch {
    return undefined;
  }
}

/** Removes the holder file if it is still this process's one for `lock`. */
export async function removeHolder(path: string, lock: string): Promise<void> {
  const holder = await readHolder(path);
  if (holder?.pid === process.pid && holder.lock === lock) await rm(path, { force: true });
}

/**
 * Judges the holder of a lock directory. With a holder file written for this very lock on this
 * machine in this boot, the pid decides at once: a SIGKILLed holder is seen dead without waiting.
 * Otherwise (no file yet, an older lock's file, another machine) only the lock's mtime, which a
 * live holder refreshes every few seconds, can tell: older than `staleMs` is dead.
 */
export function judge(holder: Holder | undefined, lock: Stats, staleMs: number, now: number): Verdict {
  const sameLock = holder !== undefined && holder.lock === identityOf(lock);
  const known = sameLock ? holder : undefined;
  if (known !== undefined && known.host === hostname()) {
    if (BOOT !== '' && known.boot !== '' && known.boot !== BOOT) return { state: 'dead', holder: known };
    // This process holds no such lock (it would not be asking): a holder with our pid is an
    // earlier process that had the same pid (a restarted container's pid 1).
    if (known.pid === process.pid) return { state: 'dead', holder: known };
    if (!isRunning(known.pid)) return { state: 'dead', holder: known };
    const [state, start] = procStat(known.pid);
    // A killed process its parent has not reaped yet still answers kill(pid, 0).
    if (state === 'Z' || state === 'X') return { state: 'dead', holder: known };
    if (known.start !== '' && start !== '' && start !== known.start) return { state: 'dead', holder: known };
    return { state: 'alive', holder: known };
  }
  return { state: lock.mtimeMs < now - staleMs ? 'dead' : 'alive', holder: known };
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** State and start time of a process (Linux `/proc/<pid>/stat`); empty strings elsewhere. */
function procStat(pid: number): [state: string, start: string] {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count fields after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return [fields[0] ?? '', fields[19] ?? ''];
  } catch {
    return ['', ''];
  }
}

function readBoot(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return '';
  }
}

const BOOT = readBoot();
